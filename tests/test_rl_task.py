"""The RL task end to end on real environments: determinism, exact resume through torch.save,
held-apart evaluation, the deployable actor, gymnasium MuJoCo, and clear errors for bad input."""

import io

import numpy as np
import pytest
import torch

pytest.importorskip("dm_control")

from run_helpers import RL_TINY  # noqa: E402

from pbtnas.errors import ConfigError, MemberDiverged  # noqa: E402
from pbtnas.search.state import MemberState  # noqa: E402
from pbtnas.tasks import build_task  # noqa: E402
from pbtnas.tasks.rl.task import EVAL_SEED_BASE, RLOptions, RLTask  # noqa: E402

TINY = {**RL_TINY, "eval_episodes": 2, "final_eval_episodes": 3, "lr": 1e-3}


@pytest.fixture(scope="module")
def task():
    return RLTask(RLOptions(**TINY))


def same(a: MemberState, b: MemberState) -> bool:
    for key in a.models:
        for name, t in a.models[key].items():
            if not torch.equal(t, b.models[key][name]):
                return False
    return True


def roundtrip(state: MemberState) -> MemberState:
    buf = io.BytesIO()
    torch.save(state.to_dict(), buf)
    buf.seek(0)
    return MemberState.from_dict(torch.load(buf, weights_only=False))


def test_same_seed_same_member_and_resume_is_exact(task):
    genome = task.space.random_genome(np.random.default_rng(3))
    s0 = task.init_state(genome, 7)
    a1, _ = task.train_step(genome, s0, 0, 11)
    b1, _ = task.train_step(genome, s0, 0, 11)
    assert same(a1, b1)
    # continuing from a checkpoint read back from disk equals continuing in memory
    a2, ma = task.train_step(genome, a1, 1, 12)
    b2, mb = task.train_step(genome, roundtrip(a1), 1, 12)
    speeds = ("fps", "updates_per_s")  # wall-clock speeds: the only metrics allowed to differ
    assert same(a2, b2) and {k: v for k, v in ma.items() if k not in speeds} == {k: v for k, v in mb.items() if k not in speeds}
    assert a2.extra["buffer"]["size"] == b2.extra["buffer"]["size"] > 100
    # the input state is left untouched (a retried step starts from it)
    # 60 agent steps: an episode of 50 steps (+ its first entry), then 10 steps of the next (+ first)
    assert a1.extra["buffer"]["size"] == 51 + 11
    # a different seed gives a different member
    c1, _ = task.train_step(genome, s0, 0, 12)
    assert not same(a1, c1)


def test_exploration_schedule_counts_frames_and_learning_happens(task):
    genome = task.space.random_genome(np.random.default_rng(4))
    s = task.init_state(genome, 1)
    s, m1 = task.train_step(genome, s, 0, 1)
    s, m2 = task.train_step(genome, s, 1, 2)
    assert (m1["frames"], m2["frames"]) == (120, 240)
    assert m2["std"] < m1["std"] < 1.0
    assert m2["updates"] > m1["updates"] > 0
    fitness = task.evaluate(genome, s, 0)
    assert np.isfinite(fitness)
    # fitness episodes use fixed held-apart seeds: the same member scores the same every time
    assert task.evaluate(genome, s, 123) == fitness
    final = task.final_evaluate(genome, s, 0)
    assert final["final_episodes"] == 3 and np.isfinite(final["final_return"])


def test_deployed_actor_is_traceable_and_shaped(task):
    genome = task.space.random_genome(np.random.default_rng(5))
    state = task.init_state(genome, 2)
    module = task.build_module(genome, state)
    assert module.obs_shape == (17,) and module.action_dim == 6 and not module.training
    obs = torch.randn(4, 17)
    traced = torch.jit.trace(module, obs)
    assert torch.allclose(traced(obs), module(obs))
    scripted = torch.jit.script(module)
    assert torch.allclose(scripted(obs), module(obs))


def test_gymnasium_mujoco_trains():
    task = RLTask(RLOptions(**{**TINY, "env": "HalfCheetah-v5"}))
    genome = task.space.random_genome(np.random.default_rng(0))
    state, metrics = task.train_step(genome, task.init_state(genome, 0), 0, 5)
    assert metrics["updates"] > 0
    assert task.build_module(genome, state).obs_shape == (17,)


def test_nan_loss_is_reported_as_divergence(task):
    genome = task.space.random_genome(np.random.default_rng(6))
    state = task.init_state(genome, 3)
    state, _ = task.train_step(genome, state, 0, 1)
    broken = state.clone()
    for name, t in broken.models["critic_target"].items():
        if name.endswith("head.weight"):
            broken.models["critic_target"][name] = torch.full_like(t, float("nan"))
    with pytest.raises(MemberDiverged):
        task.train_step(genome, broken, 1, 2)


@pytest.mark.parametrize("env", ["cheetah-sprint", "NoSuchEnv-v3", "foo:bar"])
def test_unknown_environment_is_a_config_error(env):
    task = build_task({"name": "rl", **TINY, "env": env})
    with pytest.raises(ConfigError, match="task.env"):
        task.init_state(task.space.random_genome(np.random.default_rng(0)), 0)


def test_bad_options_are_config_errors():
    with pytest.raises(ConfigError, match="buffer"):
        build_task({"name": "rl", **TINY, "buffer": "global"})
    with pytest.raises(ConfigError, match="hidden_dim"):
        build_task({"name": "rl", **TINY, "hidden_dim": 0})
    with pytest.raises(ConfigError, match="pixels"):
        RLTask(RLOptions(**{**TINY, "env": "HalfCheetah-v5", "pixels": True})).env()


def test_shared_buffer_is_used_by_all_members():
    task = RLTask(RLOptions(**{**TINY, "buffer": "shared"}))
    genome = task.space.random_genome(np.random.default_rng(0))
    s1, _ = task.train_step(genome, task.init_state(genome, 0), 0, 1)
    s2, _ = task.train_step(genome, task.init_state(genome, 1), 0, 2)
    assert s1.extra["buffer"] is None and s2.extra["buffer"] is None
    assert len(task._shared_buffer) == 2 * (51 + 11)


def test_training_seeds_are_kept_apart_from_evaluation_seeds(task, monkeypatch):
    seen = []
    env = task.env("train")
    original = env.reset
    monkeypatch.setattr(env, "reset", lambda seed: (seen.append(seed), original(seed))[1])
    genome = task.space.random_genome(np.random.default_rng(0))
    task.train_step(genome, task.init_state(genome, 0), 0, 2**40 + 17)
    assert seen and all(0 <= s < EVAL_SEED_BASE for s in seen)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on machines without CUDA")
def test_cuda_without_a_gpu_is_a_config_error():
    from pbtnas.config import config_from_dict
    from pbtnas.tasks.devices import check_device_for_run

    build_task({"name": "rl", **TINY, "device": "cuda"})  # inspecting needs no device
    config = config_from_dict({"task": {"name": "rl", **TINY, "device": "cuda"}, "backend": "local"})
    with pytest.raises(ConfigError, match="task.device 'cuda' names a CUDA device but torch sees no CUDA device here"):
        check_device_for_run(config)


@pytest.mark.parametrize("preset", ["rl-cheetah", "rl-walker", "rl-quadruped-pixels"])
def test_presets_validate_and_parse(preset):
    from pbtnas.config import config_from_dict
    from pbtnas.tasks.base import parse_options
    from pbtnas.tasks.presets import get_preset

    config = config_from_dict(get_preset(preset))
    assert config.task["name"] == "rl" and config.population >= 8
    task_options = dict(config.task)
    task_options.pop("name")
    options = parse_options(RLOptions, task_options)
    assert options.eval_episodes == 10
