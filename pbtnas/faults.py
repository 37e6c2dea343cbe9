"""Deterministic fault injection, for tests that must hit a moment (a kill right after a chosen
step was committed, a worker dying in the middle of a chosen member's step) without polling for a
timing window.

``PBTNAS_FAULT`` holds one fault or several separated by commas. Unset, this module does nothing.

Driver faults (the process running the search):

* ``after-step:K:kill``       the driver sends itself SIGKILL (like ``kill -9``) right after step
  ``K`` was committed (manifest written, ``step_done`` journaled);
* ``after-step:K:interrupt``  the same moment, as Ctrl-C (``KeyboardInterrupt``);
* ``dispatched:K:kill``        the driver sends itself SIGKILL right after the local backend handed
  the first job of step ``K`` to a worker (a driver death while a worker is busy);
* ``spawned:K:kill``           the driver sends itself SIGKILL right after the local backend started
  a worker process for a job of step ``K``, before handing it the job (a driver death while the
  worker is still starting up: importing torch and the task).

Worker faults (the process training one member step), fired on the first attempt of that job only,
so that the runner's retry of it succeeds:

* ``worker:UID:STEP:PHASE:kill``  the worker running member ``UID``'s step ``STEP`` sends itself
  SIGKILL at ``PHASE``: ``start`` (before the member is loaded), ``trained`` (after training and
  evaluation, before its checkpoint is written) or ``saved`` (after the checkpoint was written,
  before the result is sent back);
* ``worker:UID:STEP:PHASE:raise`` the worker raises ``RuntimeError`` there instead (a crash that
  the worker survives).

Write faults (any process that writes into the run directory), for a disk that fills up or turns
read-only mid-run:

* ``write:TARGET:ERRNO[:N]``  the ``N``-th write (default 1) of ``TARGET`` in this process fails
  with ``ERRNO`` (``enospc``, ``edquot``, ``erofs``, ``eacces``), and so does every write after it,
  of any target, as on a disk that stays full until it is freed. ``TARGET`` is ``manifest``
  (population.json), ``checkpoint`` (a member checkpoint), ``best`` (best/member.pt), ``summary``,
  ``config``, ``journal`` (an appended event) or ``any``. Counted per process: use the in-process
  backend when the target is a checkpoint a worker writes.

Local workers inherit the variable; the Ray backend hands it to its actors with each job.

A leaf module (it imports nothing from pbtnas): the engine, the backends and the run directory's
atomic writes all call it, so it sits below all of them (docs/architecture.md).
"""

from __future__ import annotations

import errno
import os
import signal
from pathlib import Path

ENV = "PBTNAS_FAULT"
PHASES = ("start", "trained", "saved")
WRITE_TARGETS = ("manifest", "checkpoint", "best", "summary", "config", "journal", "any")
WRITE_ERRNOS = {"enospc": errno.ENOSPC, "edquot": errno.EDQUOT, "erofs": errno.EROFS, "eacces": errno.EACCES}
_writes: dict = {"spec": None, "counts": {}, "full": None}  # per process: writes seen, the errno once fired


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


def write_target(path: str | Path) -> str:
    """What a file in a run directory is, for ``write:TARGET:...`` faults."""
    path = Path(path)
    name = path.name
    if name == "population.json":
        return "manifest"
    if name == "journal.jsonl":
        return "journal"
    if name in ("summary.json", "config.yaml"):
        return name.split(".")[0]
    if name == "member.pt" and path.parent.name == "best":
        return "best"
    if name.endswith(".pt") and any(part.startswith("step_") for part in path.parts):
        return "checkpoint"
    return "file"


def on_write(path: str | Path) -> None:
    """Called before every write into a run directory; raises the ``OSError`` a ``write:...``
    fault names once its moment has come (and for every write after it)."""
    text = os.environ.get(ENV, "")
    if "write:" not in text:
        return
    if _writes["spec"] != text:  # a new spec (tests change the variable): count afresh
        _writes.update(spec=text, counts={}, full=None)
    if _writes["full"] is None:
        counts = _writes["counts"]
        target = write_target(path)
        for kind in (target, "any"):
            counts[kind] = counts.get(kind, 0) + 1
        for spec in _specs(text):
            if spec[0] != "write" or len(spec) not in (3, 4) or spec[1] not in WRITE_TARGETS or spec[2] not in WRITE_ERRNOS:
                continue
            wanted = int(spec[3]) if len(spec) == 4 and spec[3].isdigit() else 1
            if spec[1] in (target, "any") and counts[spec[1]] == wanted:
                _writes["full"] = WRITE_ERRNOS[spec[2]]
    if _writes["full"] is not None:
        code = _writes["full"]
        raise OSError(code, os.strerror(code), str(path))


def reset() -> None:
    """Forget the writes counted so far (for tests that run several faulty runs in one process)."""
    _writes.update(spec=None, counts={}, full=None)
