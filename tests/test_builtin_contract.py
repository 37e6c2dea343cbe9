"""Every built-in task keeps the contract that check_task tests (a run's start checks the
structure only for built-in tasks; this is where their evaluations and training step are checked)."""

import pytest

import pbtnas
from pbtnas.tasks import build_task

GAN_TINY = dict(
    width=8,
    disc_width=8,
    latent_dim=12,
    batch_size=8,
    batches_per_step=2,
    n_critic=1,
    eval_samples=64,
    final_samples=64,
    classifier_epochs=1,
    classifier_width=8,
    stacked_size=500,
)
RL_TINY = dict(
    env="cheetah-run",
    hidden_dim=16,
    batch_size=16,
    frames_per_step=40,
    seed_frames=20,
    episode_frames=40,
    buffer_capacity=200,
    eval_episodes=1,
    final_eval_episodes=1,
)

TASKS = {
    "classification": {"name": "classification", "dataset": "digits", "width": 4, "batches_per_step": 2},
    "classification-hyperparameters": {"name": "classification", "dataset": "digits", "width": 4, "batches_per_step": 2, "lr_choices": [1e-3, 3e-3]},
    "simulated": {"name": "simulated", "step_seconds": 0.0},
    "gan": {"name": "gan", **GAN_TINY},
    "gan-hard": {"name": "gan", **GAN_TINY, "space": "gan-hard", "dataset": "stacked-mnist"},
    "rl": {"name": "rl", **RL_TINY},
}


@pytest.mark.parametrize("name", sorted(TASKS))
def test_builtin_task_keeps_the_contract(name):
    if name == "rl":
        pytest.importorskip("dm_control")
    task = build_task(TASKS[name])
    task.prepare()
    report = pbtnas.check_task(task, train=True)
    assert report.trained and report.owned_tensors
