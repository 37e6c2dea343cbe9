"""A short video of the delivered agent: one deterministic evaluation episode of an RL run's final
(or, while running, best-so-far) member, rendered and written as an animated GIF with imageio.

A run whose task asked for one (``ReportHints.episode_video`` in ``run_info.json``; an older
run of the RL task) gets one, through the task's ``record_episode`` hook. Recording builds the
task, so the report does it only for installed code: never for a task a run names by file or
module, nor for an environment module a run names. Where nothing can render (no OpenGL backend, no display for GLFW, a gymnasium environment without
``rgb_array`` rendering) the report says why instead.
"""

from __future__ import annotations

from pathlib import Path

from pbtnas.analysis.report.history import RunHistory
from pbtnas.errors import PbtnasError, require

FPS = 25
SIZE = 128
MAX_FRAMES = 200


def episode_video(h: RunHistory, path: Path) -> tuple[str | None, str]:
    """Write ``path`` (a .gif); return ``(file name or None, caption or the reason it is missing)``."""
    task_config = (h.config or {}).get("task") or {}
    if not h.hints.episode_video:
        return None, ""
    if ":" in h.task_name:  # a task file or module: the report never imports the run's own code
        return None, f"no video: the task comes from {h.task_name}, which a report does not import (a run directory is data, not code)"
    env = str(task_config.get("env") or "")
    module = env.rpartition(":")[0]
    if module and module not in ("dmc", "gym"):  # a report runs no code a run directory names ("gym:pkg:Env-v0" too)
        return None, f"no video: the environment comes from module {module}, which a report does not import (a run directory is data, not code)"
    root = h.run_dir
    checkpoint = next((p for p in (root / "final" / "member.pt", root / "best" / "member.pt") if p.is_file()), None)
    if checkpoint is None:
        return None, "no video: no member has finished a step yet"
    try:
        from pbtnas.rundir.store import load_member
        from pbtnas.tasks import build_task
        from pbtnas.tasks.devices import task_config_here

        imageio = require("imageio", "report")
        task = build_task(task_config_here(task_config))  # a GPU run's report on a CPU machine too
        record = task.record_episode
        if record is None:
            return None, ""
        genome, state, meta = load_member(checkpoint)
        frames, total = record(genome, state, size=SIZE, max_frames=MAX_FRAMES)
        imageio.mimsave(path, frames, duration=1000 / FPS, loop=0)
    except PbtnasError as exc:
        return None, f"no video: {exc}"
    except Exception as exc:  # noqa: BLE001 - a video must never stop the report
        return None, f"no video: {type(exc).__name__}: {exc}"
    which = "final" if checkpoint.parent.name == "final" else "best so far"
    on = f" on {env}" if env else ""
    cut = f", first {len(frames)} agent steps" if len(frames) >= MAX_FRAMES else ""
    return path.name, (
        f"{which} member {meta.get('uid')}{on}: one deterministic evaluation "
        f"episode, return {total:.1f} ({len(frames)} frames at {FPS} frames/s{cut})"
    )
