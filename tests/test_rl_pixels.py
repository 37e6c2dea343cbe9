"""The 36-gene pixel agent: the paper-size preset builds; at tiny size it renders real frames
(MUJOCO_GL=egl), trains, and its children mix; updates run on uint8 frame stacks of the right
shape even where no renderer exists."""

import copy
import os

import numpy as np
import pytest
import torch

# dm_control picks its renderer once per process, at its first import: in a test session that
# also runs state-only RL tests (which set no renderer) pick the headless one up front.
os.environ.setdefault("MUJOCO_GL", "egl")
pytest.importorskip("dm_control")

from pbtnas.search.operators import mix  # noqa: E402
from pbtnas.search.state import keys_under  # noqa: E402
from pbtnas.tasks.base import parse_options  # noqa: E402
from pbtnas.tasks.presets import get_preset  # noqa: E402
from pbtnas.tasks.rl.agent import Nets, random_shift, update  # noqa: E402
from pbtnas.tasks.rl.networks import Actor, Critic, Encoder  # noqa: E402
from pbtnas.tasks.rl.task import RLOptions, RLTask  # noqa: E402

TINY = dict(
    image_size=32,
    encoder_channels=4,
    hidden_dim=16,
    batch_size=8,
    frames_per_step=60,
    seed_frames=20,
    episode_frames=40,
    buffer_capacity=300,
    eval_episodes=1,
    final_eval_episodes=1,
    device="cpu",
)


def tiny_preset_task() -> RLTask:
    config = get_preset("rl-quadruped-pixels")["task"]
    config.pop("name")
    config.update(TINY)
    return RLTask(parse_options(RLOptions, config))


def rendering_works() -> bool:
    try:
        from dm_control import suite

        env = suite.load("cartpole", "balance")
        env.physics.render(8, 8)
        return True
    except Exception:  # noqa: BLE001 - any GL failure means "no renderer here"
        return False


def test_paper_size_preset_builds_36_genes():
    config = get_preset("rl-quadruped-pixels")["task"]
    assert (config["image_size"], config["frame_stack"], config["action_repeat"], config["hidden_dim"]) == (84, 3, 2, 1024)
    task = tiny_preset_task()
    assert len(task.space) == 36
    genome = task.space.random_genome(np.random.default_rng(0))
    enc = Encoder(genome, (9, 84, 84), 32)
    assert enc.repr_dim == 32 * 41 * 41
    assert enc(torch.zeros(2, 9, 84, 84)).shape == (2, 32 * 41 * 41)


def test_updates_on_frame_stacks_without_a_renderer():
    task = tiny_preset_task()
    genome = task.space.random_genome(np.random.default_rng(1))
    # quadruped's shapes (9 stacked channels, 12 actions) without touching the renderer
    enc = Encoder(genome, (9, 32, 32), 4)
    actor = Actor(genome, enc.repr_dim, 12, 16)
    critic = Critic(genome, enc.repr_dim, 12, 16)
    nets = Nets(
        actor,
        critic,
        copy.deepcopy(critic),
        enc,
        torch.optim.Adam(actor.parameters(), 1e-3),
        torch.optim.Adam(critic.parameters(), 1e-3),
        torch.optim.Adam(enc.parameters(), 1e-3),
    )
    gen = torch.Generator().manual_seed(0)
    obs = torch.randint(0, 256, (8, 9, 32, 32), dtype=torch.uint8)
    batch = (obs, torch.rand(8, 12) * 2 - 1, torch.rand(8, 1), torch.full((8, 1), 0.97), obs.flip(0))
    before = enc.conv0.weight.detach().clone()
    for _ in range(3):
        metrics = update(nets, batch, 0.5, gen, tau=0.01, stddev_clip=0.3, augment_pad=4)
    assert np.isfinite(metrics["critic_loss"])
    assert not torch.equal(before, enc.conv0.weight)  # the critic's loss trains the encoder
    shifted = random_shift(obs.float(), 4, gen)
    assert shifted.shape == obs.shape and not torch.equal(shifted, obs.float())


@pytest.mark.skipif(not rendering_works(), reason="no OpenGL renderer (MUJOCO_GL=egl) on this machine")
def test_rendered_pixels_train_evaluate_and_mix():
    task = tiny_preset_task()
    assert task.obs_shape == (9, 32, 32)
    rng = np.random.default_rng(2)
    g1, g2 = task.space.random_genome(rng), task.space.random_genome(rng)
    g2["encoder.layer1"] = "conv3"
    s1, m1 = task.train_step(g1, task.init_state(g1, 1), 0, 1)
    s2 = task.init_state(g2, 2)  # an untrained donor is enough to check what moves
    assert m1["updates"] > 0 and s1.extra["buffer"]["obs"].dtype == torch.uint8
    assert s1.extra["buffer"]["obs"].shape[1:] == (3, 32, 32)  # single frames are stored
    assert np.isfinite(task.evaluate(g1, s1, 0))
    # force the encoder layer gene across: its tensors come from the donor, shrink-perturbed
    child_g = None
    for seed in range(50):
        child_g, child_s, record = mix(task, (g1, s1), (g2, s2), np.random.default_rng(seed), p_donor=0.3)
        if "encoder.layer1" in record.genes_from_donor:
            break
    assert "encoder.layer1" in record.genes_from_donor
    names = keys_under(s2.models["encoder"], ["layers.1"])
    assert names and all(torch.allclose(child_s.models["encoder"][n], 0.4 * s2.models["encoder"][n], atol=0.2) for n in names)
    s3, m3 = task.train_step(child_g, child_s, 1, 3)
    assert m3["updates"] > m1["updates"]
    module = task.build_module(child_g, s3)
    assert module.obs_shape == (9, 32, 32) and module.action_dim == 12
    assert torch.jit.script(module)(torch.zeros(1, 9, 32, 32)).shape == (1, 12)
