"""Slow: one member of the rl-cheetah preset really learns (its return rises well above the
untrained policy's). Run with ``pytest -m slow tests/test_rl_learning.py``."""

import numpy as np
import pytest
import torch

pytest.importorskip("dm_control")

from pbtnas.tasks.base import parse_options  # noqa: E402
from pbtnas.tasks.presets import get_preset  # noqa: E402
from pbtnas.tasks.rl.task import RLOptions, RLTask  # noqa: E402


@pytest.mark.slow
def test_cheetah_member_learns():
    torch.set_num_threads(1)
    config = get_preset("rl-cheetah")["task"]
    config.pop("name")
    config.update(frames_per_step=8000, eval_episodes=3)
    task = RLTask(parse_options(RLOptions, config))
    genome = {g.name: g.options[0] for g in task.space}  # a plain network: feature 25, identity layers
    genome.update(
        {
            "actor.layer0": "linear",
            "critic.q1.layer0": "linear",
            "critic.q2.layer0": "linear",
            "actor.act0": "relu",
            "actor.act1": "relu",
            "critic.q1.act0": "relu",
            "critic.q1.act1": "relu",
            "critic.q2.act0": "relu",
            "critic.q2.act1": "relu",
            "actor.feature_dim": 50,
            "critic.feature_dim": 50,
        }
    )
    state = task.init_state(genome, 0)
    untrained = task.evaluate(genome, state, 0)
    for step in range(3):
        state, metrics = task.train_step(genome, state, step, 100 + step)
    trained = task.evaluate(genome, state, 0)
    assert np.isfinite(metrics["critic_loss"])
    assert trained > untrained + 50, (untrained, trained)
