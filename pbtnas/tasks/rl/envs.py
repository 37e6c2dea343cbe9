"""Environment adapters: one small interface over the dm_control suite and gymnasium MuJoCo.

An adapter is reset with an explicit seed (training and evaluation use disjoint seed ranges),
takes actions in [-1, 1] (rescaled to the environment's bounds), applies action repeat, and
returns ``(obs, reward, discount, last)``: ``discount`` is 0 only at a true terminal state, and
``last`` marks the end of an episode (terminal or time limit). Pixel observations are single
RGB frames as uint8 ``(3, H, W)``; frame stacking is done by :class:`FrameStack` for acting and
by the replay buffer for learning, so every frame is stored once.
"""

from __future__ import annotations

import os
import re
from collections import deque

import numpy as np

from ...errors import ConfigError, PbtnasError, require

# dm_control picks its OpenGL backend once, when it is first imported, so the choice is made
# here, before any adapter imports it: EGL renders headless (GPU or Mesa). A user's own
# MUJOCO_GL (e.g. osmesa, glfw) wins.
os.environ.setdefault("MUJOCO_GL", "egl")

#: the dm_control domains whose default camera for pixels is not camera 0 (as in DrQ-v2)
_CAMERA = {"quadruped": 2}


def parse_env_name(name: str) -> tuple[str, str]:
    """``("dmc", "cheetah-run")`` or ``("gym", "HalfCheetah-v5")`` from a user's env name.

    Accepted: ``dmc:domain-task``, ``gym:Name-vN``, or a bare name (``Name-vN`` is gymnasium,
    ``domain-task`` is dm_control).
    """
    if ":" in name:
        kind, _, rest = name.partition(":")
        if kind not in ("dmc", "gym"):
            raise ConfigError(f"task.env {name!r}: the prefix must be 'dmc:' or 'gym:'")
        return kind, rest
    if re.fullmatch(r"[A-Za-z0-9_/]+-v\d+", name):
        return "gym", name
    return "dmc", name


class DMCEnv:
    """A dm_control suite task from states (flattened observation vector) or pixels."""

    def __init__(self, name: str, action_repeat: int, pixels: bool, image_size: int, episode_frames: int):
        suite = require("dm_control.suite", "rl")
        domain, _, task = name.partition("-")
        task = task.replace("-", "_")
        if (domain, task) not in suite.ALL_TASKS:
            known = ", ".join(f"{d}-{t}" for d, t in suite.ALL_TASKS[:12])
            raise ConfigError(f"task.env: unknown dm_control task {name!r} (expected domain-task, e.g. {known}, ...)")
        self._env = suite.load(domain, task, task_kwargs={"random": 0},
                               environment_kwargs={"flat_observation": False})
        self.pixels, self.image_size, self.action_repeat = pixels, image_size, action_repeat
        self.camera = _CAMERA.get(domain, 0)
        self.max_steps = max(1, episode_frames // action_repeat)
        spec = self._env.action_spec()
        self.low, self.high = spec.minimum.astype(np.float32), spec.maximum.astype(np.float32)
        self.action_dim = int(spec.shape[0])
        if pixels:
            self._check_rendering()
        self.obs_shape = (3, image_size, image_size) if pixels else (
            int(sum(int(np.prod(s.shape)) for s in self._env.observation_spec().values())),)

    def _check_rendering(self) -> None:
        try:
            self._env.physics.render(8, 8, camera_id=self.camera)
        except Exception as exc:  # the GL backends raise many unrelated types
            raise PbtnasError(
                f"cannot render pixels with MUJOCO_GL={os.environ.get('MUJOCO_GL')!r} ({type(exc).__name__}: {exc}); "
                "install EGL (libegl1, a GPU driver or Mesa) or set MUJOCO_GL=osmesa before starting pbtnas"
            ) from None

    def _obs(self, ts) -> np.ndarray:
        if self.pixels:
            frame = self._env.physics.render(self.image_size, self.image_size, camera_id=self.camera)
            return np.ascontiguousarray(frame.transpose(2, 0, 1))
        return np.concatenate([np.asarray(v, dtype=np.float32).ravel() for v in ts.observation.values()])

    def reset(self, seed: int) -> np.ndarray:
        self._env.task.random.seed(seed % 2**32)  # dm_control draws the initial state from this stream
        self._t = 0
        return self._obs(self._env.reset())

    def step(self, action: np.ndarray):
        a = self.low + (np.clip(action, -1.0, 1.0) + 1.0) * 0.5 * (self.high - self.low)
        reward, discount = 0.0, 1.0
        for _ in range(self.action_repeat):
            ts = self._env.step(a)
            reward += ts.reward or 0.0
            discount = ts.discount if ts.discount is not None else 1.0
            if ts.last():
                break
        self._t += 1
        last = ts.last() or self._t >= self.max_steps
        return self._obs(ts), float(reward), float(discount), bool(last)


class GymEnv:
    """A gymnasium (MuJoCo) environment from states."""

    def __init__(self, name: str, action_repeat: int, pixels: bool, episode_frames: int):
        gym = require("gymnasium", "rl")
        if pixels:
            raise ConfigError("task.pixels is supported for dm_control tasks only; use e.g. env 'quadruped-run'")
        try:
            self._env = gym.make(name)
        except gym.error.Error as exc:
            raise ConfigError(f"task.env: gymnasium cannot make {name!r}: {exc}") from None
        space = self._env.action_space
        if not hasattr(space, "low") or len(space.shape) != 1:
            raise ConfigError(f"task.env {name!r}: only continuous (Box, 1-D) action spaces are supported")
        if len(self._env.observation_space.shape or ()) != 1:
            raise ConfigError(f"task.env {name!r}: only 1-D observation vectors are supported from states, "
                              f"got shape {self._env.observation_space.shape}")
        self.low, self.high = space.low.astype(np.float32), space.high.astype(np.float32)
        self.action_dim = int(space.shape[0])
        self.obs_shape = (int(self._env.observation_space.shape[0]),)
        self.action_repeat, self.pixels = action_repeat, False
        self.max_steps = max(1, episode_frames // action_repeat)

    def reset(self, seed: int) -> np.ndarray:
        self._t = 0
        obs, _ = self._env.reset(seed=int(seed % 2**31))
        return np.asarray(obs, dtype=np.float32)

    def step(self, action: np.ndarray):
        a = self.low + (np.clip(action, -1.0, 1.0) + 1.0) * 0.5 * (self.high - self.low)
        reward, discount, last = 0.0, 1.0, False
        for _ in range(self.action_repeat):
            obs, r, terminated, truncated, _ = self._env.step(a)
            reward += float(r)
            if terminated:
                discount, last = 0.0, True
                break
            if truncated:
                last = True
                break
        self._t += 1
        last = last or self._t >= self.max_steps
        return np.asarray(obs, dtype=np.float32), reward, discount, last


def make_env(name: str, action_repeat: int, pixels: bool, image_size: int, episode_frames: int):
    """An adapter for ``name`` (see :func:`parse_env_name`)."""
    kind, rest = parse_env_name(name)
    if kind == "dmc":
        return DMCEnv(rest, action_repeat, pixels, image_size, episode_frames)
    return GymEnv(rest, action_repeat, pixels, episode_frames)


class FrameStack:
    """The last ``k`` frames of the current episode, stacked on the channel axis (acting only)."""

    def __init__(self, k: int):
        self.k = k
        self.frames: deque = deque(maxlen=k)

    def reset(self, frame: np.ndarray) -> np.ndarray:
        self.frames.clear()
        for _ in range(self.k):
            self.frames.append(frame)
        return np.concatenate(list(self.frames), axis=0)

    def push(self, frame: np.ndarray) -> np.ndarray:
        self.frames.append(frame)
        return np.concatenate(list(self.frames), axis=0)
