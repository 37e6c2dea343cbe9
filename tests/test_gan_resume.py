"""A GAN run (generator, EMA generator, discriminator and both optimizers in the checkpoints)
survives a crash: resumed after step 1, it ends exactly like the uninterrupted run, and it leaves
a sample grid of the best generator for every step."""

from run_helpers import crashed_and_resumed
from test_gan_task import TINY

from pbtnas.config import config_from_dict


def config():
    return config_from_dict({"task": {"name": "gan", **TINY}, "population": 4, "steps": 3, "seed": 4, "backend": "inprocess"})


def test_gan_run_resumed_after_a_crash_matches_the_uninterrupted_run(tmp_path):
    full, resumed = crashed_and_resumed(config, tmp_path, step=1)
    assert resumed["final_metric"] == full["final_metric"] and resumed["best_uid"] == full["best_uid"]
    assert sorted(p.name for p in (tmp_path / "full" / "samples").iterdir()) == ["after_step_0001.png", "after_step_0002.png", "after_step_0003.png"]
