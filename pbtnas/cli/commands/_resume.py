"""``pbtnas resume RUN_DIR --set key=value``: the command line's side of a resume.

What may change and why the rest may not is decided by the library, once, for the command line
and :func:`pbtnas.resume` alike (:mod:`pbtnas.engine.resume_policy`, applied by
:func:`pbtnas.engine.runner.resume_runner`). Here the command's arguments become the changes asked
for, and what the resume did becomes lines for the user.
"""

from __future__ import annotations

from pbtnas.cli.commands._options import RESUME_FLAGS, flag_values
from pbtnas.config import apply_overrides


def requested_changes(args) -> dict:
    """The changes ``--set`` and the flags ask for, as keyword overrides of
    :func:`~pbtnas.engine.runner.resume_runner` (task options in a ``task`` section); a flag
    and a ``--set`` of the same key that disagree are refused."""
    from pbtnas.cli.commands._agree import refuse_disagreeing

    flags = flag_values(args, RESUME_FLAGS)
    device = getattr(args, "device", None)
    refuse_disagreeing(list(getattr(args, "overrides", []) or []), {**flags, "device": device})
    requested = apply_overrides({}, list(getattr(args, "overrides", []) or []))
    requested.update(flags)
    if device is not None:
        task = requested.setdefault("task", {})
        if isinstance(task, dict):  # --set task=... is refused by the policy, with the reason
            task["device"] = device
    return requested


def resume_lines(runner, run_dir: str) -> list[str]:
    """What the resume changed (one line a key), and, for a run that had finished and trains no
    more, one line saying so and how to give it more budget."""
    lines = [f"changed {key}: {old!r} -> {new!r}" for key, old, new in runner.changes]
    if runner.had_finished:
        done = runner.step_done + 1
        more = "" if runner.steps_fixed else f"; to train on: pbtnas resume {run_dir} --set steps=N (N > {done})"
        lines.append(f"the run had finished after {done} steps and delivered member {_delivered(runner)}: its summary follows{more}")
    return lines


def _delivered(runner) -> str:
    summary = runner.store.read_summary() or {}
    uid = summary.get("best_uid")
    return "?" if uid is None else str(uid)
