"""An RL run (replay buffers, noise schedule and counters in the checkpoints) survives a crash:
resumed after step 1, it ends exactly like the uninterrupted run with the same seed."""

import pytest

pytest.importorskip("dm_control")

from run_helpers import crashed_and_resumed  # noqa: E402
from test_rl_task import TINY  # noqa: E402

from pbtnas.config import config_from_dict  # noqa: E402


def config():
    return config_from_dict(
        {"task": {"name": "rl", **TINY, "eval_episodes": 1, "final_eval_episodes": 1}, "population": 4, "steps": 3, "seed": 2, "backend": "inprocess"}
    )


def test_rl_run_resumed_after_a_crash_matches_the_uninterrupted_run(tmp_path):
    full, resumed = crashed_and_resumed(config, tmp_path, step=1)
    assert resumed["final_metric"] == full["final_metric"] and resumed["best_uid"] == full["best_uid"]
