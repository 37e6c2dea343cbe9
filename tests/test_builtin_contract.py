"""Every built-in task keeps the contract that check_task tests (a run's start checks the
structure only for built-in tasks; this is where their evaluations and training step are checked)."""

import pytest
from run_helpers import GAN_TINY, RL_TINY

import pbtnas
from pbtnas.tasks import build_task

GAN = {**GAN_TINY, "batches_per_step": 2, "n_critic": 1}
RL = {**RL_TINY, "frames_per_step": 40, "seed_frames": 20, "episode_frames": 40, "buffer_capacity": 200, "final_eval_episodes": 1}

TASKS = {
    "classification": {"name": "classification", "dataset": "digits", "width": 4, "batches_per_step": 2},
    "classification-hyperparameters": {"name": "classification", "dataset": "digits", "width": 4, "batches_per_step": 2, "lr_choices": [1e-3, 3e-3]},
    "simulated": {"name": "simulated", "step_seconds": 0.0},
    "gan": {"name": "gan", **GAN},
    "gan-hard": {"name": "gan", **GAN, "space": "gan-hard", "dataset": "stacked-mnist"},
    "rl": {"name": "rl", **RL},
}


@pytest.mark.parametrize("name", sorted(TASKS))
def test_builtin_task_keeps_the_contract(name):
    if name == "rl":
        pytest.importorskip("dm_control")
    task = build_task(TASKS[name])
    task.prepare()
    report = pbtnas.check_task(task, train=True)
    assert report.trained and report.owned_tensors
