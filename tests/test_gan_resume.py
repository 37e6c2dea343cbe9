"""A GAN run (generator, EMA generator, discriminator and both optimizers in the checkpoints)
survives a crash: resumed after step 1, it ends exactly like the uninterrupted run, and it leaves
a sample grid of the best generator for every step."""

import pytest
from run_helpers import StopAfter, fitness_trace
from test_gan_task import TINY

from pbtnas.config import config_from_dict
from pbtnas.engine.runner import Runner


def config():
    return config_from_dict({"task": {"name": "gan", **TINY}, "population": 4, "steps": 3, "seed": 4, "backend": "inprocess"})


def test_gan_run_resumed_after_a_crash_matches_the_uninterrupted_run(tmp_path):
    full = Runner(config(), tmp_path / "full", progress=False).start().run()
    cut = Runner(config(), tmp_path / "cut", progress=False)
    cut.observers.append(StopAfter(1))
    with pytest.raises(KeyboardInterrupt):
        cut.start().run()
    resumed = Runner.resume(tmp_path / "cut", progress=False).run()
    assert fitness_trace(tmp_path / "cut") == fitness_trace(tmp_path / "full")
    assert resumed["final_metric"] == full["final_metric"] and resumed["best_uid"] == full["best_uid"]
    assert sorted(p.name for p in (tmp_path / "full" / "samples").iterdir()) == ["after_step_0001.png", "after_step_0002.png", "after_step_0003.png"]
