"""What the RL task checks when a run starts, and what it leaves to the run: inspecting a preset
never needs its device or renderer; an unknown environment is one line naming the closest names;
a renderer is asked for only with pixels, and a missing one is reported with its real cause."""

import os
import subprocess
import sys

import pytest
import torch

pytest.importorskip("dm_control")

from run_helpers import RL_TINY_SETS  # noqa: E402

from pbtnas.cli import main  # noqa: E402

TINY = [
    "--population",
    "4",
    "--steps",
    "1",
    "--backend",
    "inprocess",
    "--quiet",
    *RL_TINY_SETS,
    "--set",
    "task.final_eval_episodes=1",
    "--set",
    "task.buffer_capacity=300",
]
PIXELS = ["--set", "task.image_size=16", "--set", "task.encoder_channels=4", "--device", "cpu"]


def one_error(err: str) -> str:
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


def test_inspecting_a_gpu_pixel_preset_needs_neither_device_nor_renderer(capsys):
    assert main(["space", "rl-quadruped-pixels"]) == 0
    out = capsys.readouterr().out
    assert "36 genes" in out and "task.device = 'cuda'" in out
    assert main(["space", "rl-cheetah", "--set", "task.env=hopper-flyy"]) == 0  # checked by run, not by space


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on machines without CUDA")
def test_running_a_cuda_preset_without_cuda_is_one_line_and_no_run_directory(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["run", "rl-quadruped-pixels", *TINY, "--out", str(out)]) == 2
    assert "torch sees no CUDA device" in one_error(capsys.readouterr().err)
    assert not out.exists()


@pytest.mark.parametrize(
    "env,suggested",
    [
        ("hopper-flyy", "hopper-hop, hopper-stand"),
        ("walkr-walk", "walker-walk"),
        ("Hopper-v9", "Hopper-v5"),
        ("dmc:cheetah-sprint", "cheetah-run"),
    ],
)
def test_unknown_environment_is_found_when_the_run_starts(tmp_path, capsys, env, suggested):
    out = tmp_path / "r"
    assert main(["run", "rl-cheetah", *TINY, "--set", f"task.env={env}", "--out", str(out)]) == 2
    line = one_error(capsys.readouterr().err)
    assert "unknown" in line and repr(env) in line and f"did you mean {suggested}" in line, line
    assert not out.exists()


def _pbtnas(args, env):
    base = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "PYOPENGL_PLATFORM", "DISPLAY")}
    return subprocess.run([sys.executable, "-m", "pbtnas", *args], capture_output=True, text=True, timeout=300, env={**base, **env})


def _osmesa_missing() -> bool:
    import ctypes.util

    return ctypes.util.find_library("OSMesa") is None


@pytest.mark.parametrize(
    "preset,extra,env,expected",
    [
        # EGL that cannot load (here: PyOpenGL pinned to another platform) is named as such
        ("rl-quadruped-pixels", PIXELS, {"MUJOCO_GL": "egl", "PYOPENGL_PLATFORM": "osmesa"}, "with MUJOCO_GL='egl'"),
        # GLFW without a display would abort inside a worker: refused before any training
        ("rl-quadruped-pixels", PIXELS, {"MUJOCO_GL": "glfw"}, "no display (DISPLAY is not set"),
        pytest.param(
            "rl-cheetah",
            [],
            {"MUJOCO_GL": "osmesa"},
            "OSMesa library (libOSMesa) was not found",
            marks=pytest.mark.skipif(not _osmesa_missing(), reason="OSMesa is installed here"),
        ),
    ],
)
def test_a_missing_renderer_is_named_not_reported_as_missing_dm_control(tmp_path, preset, extra, env, expected):
    out = tmp_path / "r"
    result = _pbtnas(["run", preset, *TINY, *extra, "--out", str(out)], env)
    assert result.returncode == 2, result.stderr
    line = one_error(result.stderr)
    assert expected in line and "not installed" not in line and "worker process died" not in line, line
    if preset == "rl-cheetah":
        assert "states need no renderer: unset MUJOCO_GL" in line
    assert not out.exists()


def test_states_set_no_renderer():
    code = (
        "import os; from pbtnas.tasks import build_task\n"
        "task = build_task({'name': 'rl', 'env': 'cartpole-balance', 'hidden_dim': 8})\n"
        "task.prepare(); task.env(); print('MUJOCO_GL', os.environ.get('MUJOCO_GL'))\n"
    )
    base = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "DISPLAY")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=base)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "MUJOCO_GL None"
    assert "GLFWError" not in result.stderr and "settotalmass" not in result.stderr, result.stderr


def test_a_users_own_gymnasium_environment_is_named_by_the_module_that_registers_it(tmp_path, capsys):
    """``task.env=custom_envs:PointMass-v0``: the module is imported (it registers the env) in the
    driver's check and in every worker; a module that cannot be imported is one line."""
    out = tmp_path / "run"
    own = ["--set", "task.env=custom_envs:PointMass-v0"]
    assert main(["run", "rl-cheetah", *TINY, "--backend", "local", "--workers", "2", *own, "--out", str(out)]) == 0
    assert (out / "summary.json").exists()
    capsys.readouterr()
    bad = tmp_path / "bad"
    assert main(["run", "rl-cheetah", *TINY, "--set", "task.env=no_such_module:PointMass-v0", "--out", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "importing module 'no_such_module', which should register 'PointMass-v0', failed: ModuleNotFoundError" in err[0], err
    assert not bad.exists()
    capsys.readouterr()
    assert main(["run", "rl-cheetah", *TINY, "--set", "task.env=custom_envs:UnboundedPush-v0", "--out", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is unbounded" in err[0], err
    assert not bad.exists()


def test_dict_observations_are_flattened(tmp_path):
    from pbtnas.tasks.rl.envs import make_env

    env = make_env("custom_envs:DictPointMass-v0", action_repeat=1, pixels=False, image_size=0, episode_frames=50)
    assert env.obs_shape == (2,)
    obs = env.reset(0)
    assert obs.shape == (2,) and obs.dtype.name == "float32"
    assert env.step(env.high)[0].shape == (2,)
    out = tmp_path / "run"
    assert main(["run", "rl-cheetah", *TINY, "--set", "task.env=custom_envs:DictPointMass-v0", "--out", str(out)]) == 0


@pytest.mark.parametrize(
    "option, message",
    [
        ("lr=-1", "task.lr: must be a finite number > 0 (got -1)"),
        ("gamma=2", "task.gamma: must be a number in (0, 1] (got 2)"),
        ("critic_tau=0", "task.critic_tau: must be a number in (0, 1] (got 0)"),
        ("batch_size=1000000", "larger than task.buffer_capacity"),  # was killed for memory
        ("std_end=-1", "task.std_end: must be a finite number >= 0 (got -1)"),
        ("final_eval_episodes=1e9", "task.final_eval_episodes: must be between 1 and 100,000 (got '1e9')"),  # was 12 GB and rising
    ],
)
def test_agent_options_out_of_range_are_one_line_before_the_run(tmp_path, capsys, option, message):
    out = tmp_path / "run"
    assert main(["run", "rl-cheetah", *TINY, "--set", f"task.{option}", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not out.exists()
