"""An RL run (replay buffers, noise schedule and counters in the checkpoints) survives a crash:
resumed after step 1, it ends exactly like the uninterrupted run with the same seed."""

import pytest

pytest.importorskip("dm_control")

from run_helpers import StopAfter, fitness_trace  # noqa: E402
from test_rl_task import TINY  # noqa: E402

from pbtnas.config import config_from_dict  # noqa: E402
from pbtnas.engine.runner import Runner  # noqa: E402


def config():
    return config_from_dict(
        {"task": {"name": "rl", **TINY, "eval_episodes": 1, "final_eval_episodes": 1}, "population": 4, "steps": 3, "seed": 2, "backend": "inprocess"}
    )


def test_rl_run_resumed_after_a_crash_matches_the_uninterrupted_run(tmp_path):
    full = Runner(config(), tmp_path / "full", progress=False).start().run()
    cut = Runner(config(), tmp_path / "cut", progress=False)
    cut.observers.append(StopAfter(1))
    with pytest.raises(KeyboardInterrupt):
        cut.start().run()
    resumed = Runner.resume(tmp_path / "cut", progress=False).run()
    assert fitness_trace(tmp_path / "cut") == fitness_trace(tmp_path / "full")
    assert resumed["final_metric"] == full["final_metric"] and resumed["best_uid"] == full["best_uid"]
