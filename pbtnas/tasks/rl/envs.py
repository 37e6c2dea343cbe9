"""Environment adapters: one small interface over the dm_control suite and gymnasium MuJoCo.

An adapter is reset with an explicit seed (training and evaluation use disjoint seed ranges),
takes actions in [-1, 1] (rescaled to the environment's bounds), applies action repeat, and
returns ``(obs, reward, discount, last)``: ``discount`` is 0 only at a true terminal state, and
``last`` marks the end of an episode (terminal or time limit). Pixel observations are single
RGB frames as uint8 ``(3, H, W)``; frame stacking is done by :class:`FrameStack` for acting and
by the replay buffer for learning, so every frame is stored once.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import re
import sys
import warnings
from collections import deque

import numpy as np

from pbtnas.errors import ConfigError, MissingDependencyError, PbtnasError, require

#: the dm_control domains whose default camera for pixels is not camera 0 (as in DrQ-v2)
_CAMERA = {"quadruped": 2}

#: what each OpenGL backend needs, for error messages
_GL_NEEDS = {
    "egl": "EGL (libEGL: 'apt-get install libegl1', provided by the NVIDIA driver on GPU machines or by Mesa)",
    "osmesa": "OSMesa ('apt-get install libosmesa6')",
    "glfw": "GLFW with a display (DISPLAY or WAYLAND_DISPLAY set, 'apt-get install libglfw3')",
}


def _gl_name() -> str:
    return os.environ.get("MUJOCO_GL", "")


def _gl_hint(pixels: bool) -> str:
    if pixels:
        return (
            "pixels need an OpenGL backend: install EGL ('apt-get install libegl1') and set MUJOCO_GL=egl, or "
            "install OSMesa ('apt-get install libosmesa6') and set MUJOCO_GL=osmesa"
        )
    return "observations from states need no renderer: unset MUJOCO_GL (or set MUJOCO_GL=disable)"


def dm_suite(pixels: bool):
    """``dm_control.suite``, imported so that its OpenGL backend fits the observations.

    dm_control picks its OpenGL backend once, when it is first imported. For pixels pbtnas asks
    for EGL (headless, GPU or Mesa) unless the user set ``MUJOCO_GL``; for states it sets nothing,
    so dm_control's own choice applies and a machine without any renderer runs them. A backend
    that cannot load is reported with its real cause, never as a missing dm_control.
    """
    if "dm_control.suite" in sys.modules:
        return sys.modules["dm_control.suite"]
    if importlib.util.find_spec("dm_control") is None or importlib.util.find_spec("mujoco") is None:
        raise MissingDependencyError("dm_control is not installed: install it with  pip install 'pbtnas[rl]'")
    if pixels and not _gl_name():
        os.environ["MUJOCO_GL"] = "egl"  # spawned workers inherit it
    chosen = _gl_name()
    try:
        with warnings.catch_warnings():
            # With MUJOCO_GL unset dm_control tries GLFW first, which warns on a machine without
            # a display; states never render, so the warning is noise.
            warnings.filterwarnings("ignore", module="glfw")
            import dm_control.suite as suite
        from absl import logging as absl_logging

        if absl_logging.get_verbosity() > absl_logging.ERROR:
            absl_logging.set_verbosity(absl_logging.ERROR)  # MuJoCo's deprecation warnings per model load
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in ("dm_control", "mujoco", "dm_env", "absl"):
            raise MissingDependencyError(
                f"dm_control cannot be imported (no module {exc.name!r}): install it with  pip install 'pbtnas[rl]'"
            ) from None
        raise _gl_error(chosen, pixels, exc) from None
    except Exception as exc:  # the GL backends fail with ImportError, AttributeError, RuntimeError, OSError, ...
        raise _gl_error(chosen, pixels, exc) from None
    return suite


def _gl_error(chosen: str, pixels: bool, exc: BaseException) -> PbtnasError:
    what = f"MUJOCO_GL={chosen!r}" if chosen else "the OpenGL backend dm_control chose"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if "glGetError" in text and chosen == "osmesa":
        text = "the OSMesa library (libOSMesa) was not found"
    needs = _GL_NEEDS.get(chosen.lower())
    return PbtnasError(
        f"dm_control cannot load its renderer with {what} ({type(exc).__name__}: {text})"
        + (f"; that backend needs {needs}" if needs else "")
        + f"; {_gl_hint(pixels)}"
    )


def renderer_name() -> str:
    """The OpenGL backend dm_control uses in this process ('egl', 'osmesa', 'glfw' or 'disable')."""
    render = sys.modules.get("dm_control._render")
    return str(getattr(render, "BACKEND", None) or "none")


def check_renderer() -> None:
    """Raise a one-line error when the backend dm_control picked cannot render here, before any
    OpenGL call that could abort the process."""
    backend = renderer_name()
    if backend in ("none", "disable", "disabled", "off", "false", "0"):
        raise PbtnasError(
            f"pixels need a renderer but dm_control has none in this process (MUJOCO_GL={_gl_name()!r} when it was first imported); {_gl_hint(True)}"
        )
    if backend == "glfw" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        set_by = f"MUJOCO_GL={_gl_name()!r}" if _gl_name() else "MUJOCO_GL unset when dm_control was first imported"
        raise PbtnasError(
            f"pixels cannot be rendered with GLFW here: no display (DISPLAY is not set; {set_by}); set MUJOCO_GL=egl (or osmesa) to render headless"
        )


def dm_control_names(pixels: bool = False) -> list[str]:
    """Every dm_control suite task as pbtnas names it (``domain-task``)."""
    suite = dm_suite(pixels)
    return [f"{d}-{t}" for d, t in suite.ALL_TASKS]


def gym_names() -> list[str]:
    """gymnasium environments with a version (``Name-vN``), or none without gymnasium."""
    try:
        import gymnasium
    except ImportError:
        return []
    return sorted(name for name in gymnasium.envs.registry if re.fullmatch(r"[A-Za-z0-9_/]+-v\d+", name))


def closest_names(name: str, names: list[str], n: int = 4) -> list[str]:
    """Up to ``n`` names like ``name``: the same domain / prefix first, then by similarity."""
    key = name.lower().replace("_", "-")
    lowered = {c.lower().replace("_", "-"): c for c in names}
    head = re.split(r"[-_]", key)[0]
    same_head = [c for k, c in lowered.items() if re.split(r"[-_]", k)[0] == head]
    similar = [lowered[k] for k in difflib.get_close_matches(key, list(lowered), n=n, cutoff=0.6)]
    out = sorted(
        sorted(same_head, reverse=True),  # among equals the newest version first (Hopper-v5)
        key=lambda c: -difflib.SequenceMatcher(None, key, c.lower()).ratio(),
    )
    return list(dict.fromkeys(out + similar))[:n]


def check_env_name(name: str, pixels: bool = False) -> None:
    """Raise :class:`ConfigError` for an environment neither dm_control nor gymnasium knows,
    naming the closest known names. Needs no renderer and builds no environment."""
    kind, rest = parse_env_name(name)
    if kind == "dmc":
        known = dm_control_names(pixels)
        domain, _, task = rest.partition("-")
        if f"{domain}-{task.replace('-', '_')}" in known:
            return
        pool = known + gym_names()
        what = "dm_control task"
        rest = f"{domain}-{task}"
    else:
        module, sep, env_id = rest.rpartition(":")
        if sep:  # gymnasium's "module:Name-vN": importing the module registers the environment
            require("gymnasium", "rl")
            try:
                importlib.import_module(module)
            except Exception as exc:
                raise ConfigError(
                    f"task.env {name!r}: importing module {module!r}, which should register {env_id!r}, failed: {type(exc).__name__}: {exc}"
                ) from None
            rest = env_id
        known = gym_names()
        if not known:
            require("gymnasium", "rl")
        if rest in known:
            return
        pool = known + (dm_control_names(pixels) if importlib.util.find_spec("dm_control") else [])
        what = "gymnasium environment"
    close = closest_names(rest, known) or closest_names(rest, [n for n in pool if n not in known])
    hint = f"; did you mean {', '.join(close)}?" if close else f"; known {what}s: {', '.join(known[:8])}, ..."
    raise ConfigError(f"task.env: unknown {what} {name!r}{hint} (dm_control names are domain-task, gymnasium names Name-vN)")


def parse_env_name(name: str) -> tuple[str, str]:
    """``("dmc", "cheetah-run")`` or ``("gym", "HalfCheetah-v5")`` from a user's env name.

    Accepted: ``dmc:domain-task``, ``gym:Name-vN``, a bare name (``Name-vN`` is gymnasium,
    ``domain-task`` is dm_control), or gymnasium's ``module:Name-vN`` for an environment that
    importing ``module`` registers (your own).
    """
    if ":" in name:
        kind, _, rest = name.partition(":")
        if kind in ("dmc", "gym"):
            return kind, rest
        if re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z0-9_/]+-v\d+", name):
            return "gym", name
        raise ConfigError(f"task.env {name!r}: the prefix must be 'dmc:' or 'gym:', or name a module as in 'my_package.envs:MyEnv-v0'")
    if re.fullmatch(r"[A-Za-z0-9_/]+-v\d+", name):
        return "gym", name
    return "dmc", name


def env_words(env: str) -> str:
    """A ``task.env`` value as words for people (``dm_control cheetah-run``, ``gymnasium
    environment Pendulum-v1``), told apart by the patterns of :func:`parse_env_name` without
    refusing anything: a report shows what a run recorded."""
    kind, sep, rest = env.partition(":")
    if sep and kind == "dmc":
        return f"dm_control {rest}"
    if sep and kind == "gym":
        return f"gymnasium environment {rest}"
    if sep:
        return f"environment {rest} (registered by module {kind})"
    if re.fullmatch(r"[A-Za-z0-9_/]+-v\d+", env):
        return f"gymnasium environment {env}"
    return f"dm_control {env}"


def env_module(name: object) -> str | None:
    """The module that naming ``name`` as ``task.env`` imports: ``my_envs`` of ``my_envs:Name-vN``,
    ``gym:my_envs:Name-vN`` or ``gym:my_envs:Name`` (importing it registers the environment);
    ``None`` for a dm_control task, a registered gymnasium name and a name refused before anything
    is imported. Runs nothing: what :data:`RLTask.code_options` gives the trust check
    (:mod:`pbtnas.tasks.trust`)."""
    if not isinstance(name, str) or ":" not in name:
        return None
    try:
        kind, rest = parse_env_name(name)
    except ConfigError:
        return None
    module, sep, _ = rest.rpartition(":")  # the module check_env_name imports (gymnasium's, too)
    return module if kind == "gym" and sep and module else None


class DMCEnv:
    """A dm_control suite task from states (flattened observation vector) or pixels."""

    def __init__(self, name: str, action_repeat: int, pixels: bool, image_size: int, episode_frames: int):
        suite = dm_suite(pixels)
        domain, _, task = name.partition("-")
        task = task.replace("-", "_")
        if (domain, task) not in suite.ALL_TASKS:
            check_env_name(f"dmc:{name}")  # raises, naming the closest known names
        self._env = suite.load(domain, task, task_kwargs={"random": 0}, environment_kwargs={"flat_observation": False})
        self.pixels, self.image_size, self.action_repeat = pixels, image_size, action_repeat
        self.camera = _CAMERA.get(domain, 0)
        self.max_steps = max(1, episode_frames // action_repeat)
        spec = self._env.action_spec()
        self.low, self.high = spec.minimum.astype(np.float32), spec.maximum.astype(np.float32)
        self.action_dim = int(spec.shape[0])
        if pixels:
            self._check_rendering()
        self.obs_shape = (3, image_size, image_size) if pixels else (int(sum(int(np.prod(s.shape)) for s in self._env.observation_spec().values())),)

    def _check_rendering(self) -> None:
        check_renderer()
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", module="glfw")
                self._env.physics.render(8, 8, camera_id=self.camera)
        except Exception as exc:  # the GL backends raise many unrelated types
            raise PbtnasError(
                f"cannot render pixels with the OpenGL backend {renderer_name()!r} "
                f"({type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''})"
                f"; {_gl_hint(True)}"
            ) from None

    def _obs(self, ts) -> np.ndarray:
        if self.pixels:
            frame = self._env.physics.render(self.image_size, self.image_size, camera_id=self.camera)
            return np.ascontiguousarray(frame.transpose(2, 0, 1))
        return np.concatenate([np.asarray(v, dtype=np.float32).ravel() for v in ts.observation.values()])

    def close(self) -> None:
        self._env.close()

    def render(self, size: int) -> np.ndarray:
        """An RGB frame (size, size, 3) of the current state from the task's camera."""
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", module="glfw")
                return np.asarray(self._env.physics.render(size, size, camera_id=self.camera))
        except Exception as exc:  # the GL backends raise many unrelated types
            raise PbtnasError(
                f"cannot render with the OpenGL backend {renderer_name()!r} ({type(exc).__name__}: "
                f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''})"
            ) from None

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
    """A gymnasium (MuJoCo) environment from states; with ``render``, made with
    ``render_mode="rgb_array"`` so that :meth:`render` gives frames (for videos)."""

    def __init__(self, name: str, action_repeat: int, pixels: bool, episode_frames: int, render: bool = False):
        gym = require("gymnasium", "rl")
        if pixels:
            raise ConfigError("task.pixels is supported for dm_control tasks only; use e.g. env 'quadruped-run'")
        self.name = name
        try:
            if render:
                # gymnasium only warns when asked for a mode the environment lacks; say it once
                modes = _render_modes(gym, name)
                if "rgb_array" not in modes:
                    raise PbtnasError(f"gymnasium environment {name!r} does not render rgb_array frames (its render modes: {list(modes) or 'none'})")
            self._env = gym.make(name, render_mode="rgb_array") if render else gym.make(name)
        except gym.error.Error as exc:
            raise ConfigError(f"task.env: gymnasium cannot make {name!r}: {exc}") from None
        space = self._env.action_space
        if not hasattr(space, "low") or len(space.shape) != 1:
            raise ConfigError(f"task.env {name!r}: only continuous (Box, 1-D) action spaces are supported")
        observations = self._env.observation_space
        if not (isinstance(observations, gym.spaces.Box) and len(observations.shape) == 1):
            # A dict or tuple of vectors, or a small matrix, is flattened into one vector; images
            # are not states (their pixels would be thousands of unrelated inputs).
            refused = f"task.env {name!r}: observations must be a vector, or a dict/tuple of vectors (flattened); got {observations}"
            if isinstance(observations, gym.spaces.Box) and len(observations.shape) >= 3:
                raise ConfigError(f"{refused} (an image)")
            try:
                self._env = gym.wrappers.FlattenObservation(self._env)
            except Exception as exc:  # noqa: BLE001 - spaces gymnasium cannot flatten (Graph, Sequence, ...)
                raise ConfigError(f"{refused} ({exc})") from None
        self.low, self.high = space.low.astype(np.float32), space.high.astype(np.float32)
        if not (np.isfinite(self.low).all() and np.isfinite(self.high).all()):
            raise ConfigError(
                f"task.env {name!r}: the action space {space} is unbounded; the agent's actions are tanh "
                "outputs rescaled to the bounds, so give the Box finite low and high"
            )
        self.action_dim = int(space.shape[0])
        self.obs_shape = (int(self._env.observation_space.shape[0]),)
        self.action_repeat, self.pixels = action_repeat, False
        self.max_steps = max(1, episode_frames // action_repeat)

    def close(self) -> None:
        self._env.close()

    def render(self, size: int) -> np.ndarray:
        """An RGB frame of the current state, scaled so that its longer side is ``size``."""
        try:
            frame = self._env.render()
        except Exception as exc:  # noqa: BLE001 - renderers (pygame, MuJoCo's GL) raise many types
            raise PbtnasError(f"gymnasium environment {self.name!r} cannot render: {type(exc).__name__}: {exc}") from None
        if frame is None:
            raise PbtnasError(f"gymnasium environment {self.name!r} rendered no rgb_array frame")
        from PIL import Image

        image = Image.fromarray(np.asarray(frame, dtype=np.uint8)[..., :3])
        scale = size / max(image.size)
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.Resampling.BILINEAR)
        # even sides: what video encoders ask for, harmless for a GIF
        return np.asarray(image)[: image.height // 2 * 2 or 1, : image.width // 2 * 2 or 1]

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


def make_env(name: str, action_repeat: int, pixels: bool, image_size: int, episode_frames: int, render: bool = False):
    """An adapter for ``name`` (see :func:`parse_env_name`); ``render``: one whose ``render(size)``
    gives frames (dm_control always can, given a renderer)."""
    kind, rest = parse_env_name(name)
    if kind == "dmc":
        return DMCEnv(rest, action_repeat, pixels, image_size, episode_frames)
    return GymEnv(rest, action_repeat, pixels, episode_frames, render=render)


def _render_modes(gym, name: str) -> list[str]:
    """The render modes an environment declares (``metadata["render_modes"]``), by making it once."""
    env = gym.make(name)
    try:
        return list(env.metadata.get("render_modes") or [])
    finally:
        env.close()


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
