"""Deterministic fault injection, for tests that must hit a moment (a kill right after a chosen
step was committed, a worker dying in the middle of a chosen member's step) without polling for a
timing window.

``PBTNAS_FAULT`` holds one fault or several separated by commas. Unset, this module does nothing.

Driver faults (the process running the search):

* ``after-step:K:kill``       the driver sends itself SIGKILL (like ``kill -9``) right after step
  ``K`` was committed (manifest written, ``step_done`` journaled);
* ``after-step:K:interrupt``  the same moment, as Ctrl-C (``KeyboardInterrupt``);
* ``dispatched:K:kill``        the driver sends itself SIGKILL right after the local backend handed
  the first job of step ``K`` to a worker (a driver death while a worker is busy).

Worker faults (the process training one member step), fired on the first attempt of that job only,
so that the runner's retry of it succeeds:

* ``worker:UID:STEP:PHASE:kill``  the worker running member ``UID``'s step ``STEP`` sends itself
  SIGKILL at ``PHASE``: ``start`` (before the member is loaded), ``trained`` (after training and
  evaluation, before its checkpoint is written) or ``saved`` (after the checkpoint was written,
  before the result is sent back);
* ``worker:UID:STEP:PHASE:raise`` the worker raises ``RuntimeError`` there instead (a crash that
  the worker survives).

Local workers inherit the variable; the Ray backend hands it to its actors with each job.
"""

from __future__ import annotations

import os
import signal

ENV = "PBTNAS_FAULT"
PHASES = ("start", "trained", "saved")


def _specs(text: str | None = None) -> list[list[str]]:
    text = os.environ.get(ENV, "") if text is None else text
    return [part.strip().split(":") for part in text.split(",") if part.strip()]


def _fire(action: str, where: str) -> None:
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "interrupt":
        raise KeyboardInterrupt
    elif action == "raise":
        raise RuntimeError(f"injected fault at {where}")


def at(point: str, step: int) -> None:
    """Called by the engine at named points; fires the fault ``PBTNAS_FAULT`` names, if any."""
    for spec in _specs():
        if len(spec) != 3:
            continue
        where, k, action = spec
        try:
            wanted = int(k)
        except ValueError:
            continue
        if where == point and wanted == step:
            _fire(action, f"{point} {step}")


def in_job(job, phase: str) -> None:
    """Called by a worker at ``phase`` of a job; fires a matching ``worker:...`` fault (first
    attempt only). The spec comes from the job (Ray) or the environment (local workers)."""
    text = (getattr(job, "meta", None) or {}).get("fault") or os.environ.get(ENV, "")
    if not text or job.attempt != 1:
        return
    for spec in _specs(text):
        if len(spec) != 5 or spec[0] != "worker":
            continue
        _, uid, step, wanted_phase, action = spec
        if wanted_phase == phase and uid == str(job.uid) and step == str(job.step):
            _fire(action, f"member {job.uid} step {job.step} ({phase})")


def spec() -> str:
    """The fault spec of this process (for a backend to hand to remote workers)."""
    return os.environ.get(ENV, "")
