"""A passed task check, remembered so that ``pbtnas run`` and ``resume`` of an unchanged task skip it.

The contract check of a user's task (:func:`~pbtnas.tasks.check.check_task`, with its evaluation in
a freshly started process) costs seconds to tens of seconds before the first member trains, and its
answer can only change when the task does. A pass is therefore written to
``$PBTNAS_CACHE/checks/<key>.json`` (default ``~/.cache/pbtnas``), keyed by:

* the SHA-256 of the file that defines the task class, and of every other module loaded from that
  file's folder (or below it) when the key is taken: the sibling modules the task file imports;
* the task's options (as parsed, defaults filled in; paths made absolute as a run records them);
* the class name, the versions of pbtnas, torch and Python, and the check's :data:`~pbtnas.tasks.check.RULES`.

Not part of the key: data files the task reads, installed packages other than torch, modules the
task imports only later (inside ``train``), and the run's seed (the check's architectures cover
every option of every gene whatever the seed). After changing any of these, run ``pbtnas check``,
which always runs the check in full. Built-in tasks are not remembered: their run-start check is a
structural one of milliseconds to a third of a second.

A memo records which parts of the check passed (evaluations, the fresh-process evaluation, the
training step); a run skips its check only when the memo covers every part it needs. A failed check
removes the memo; an unreadable or damaged memo file reads as "not remembered".
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pbtnas.errors import PbtnasError
from pbtnas.tasks.base import Task
from pbtnas.tasks.check import RULES, CheckReport, check_task

#: the parts of a check a memo may cover
PARTS = ("evaluate", "fresh_process", "train")
_FORMAT = 1


@dataclass(frozen=True)
class MemoKey:
    """What identifies one task for the memo: ``material`` (JSON-able) and its SHA-256."""

    material: dict
    digest: str


@dataclass
class CheckOutcome:
    """How a run's check went: run now (``report``), or skipped because it passed before."""

    seconds: float
    recalled: bool = False
    remembered: bool = False
    report: CheckReport | None = None


def memo_key(task: Task) -> MemoKey | None:
    """The key of ``task``, or None when it cannot be remembered: a built-in task, or a class
    without a source file (defined in a notebook or an interactive session)."""
    cls = type(task)
    if cls.__module__.split(".")[0] == "pbtnas":
        return None
    try:
        source = inspect.getsourcefile(cls)
    except (TypeError, OSError):
        return None
    if not source or not os.path.isfile(source):
        return None
    try:
        files = _code_files(Path(source).resolve())
    except OSError:
        return None
    material = {
        "format": _FORMAT,
        "rules": RULES,
        "task": cls.__qualname__,
        "options": _options(task),
        "files": files,
        "pbtnas": _pbtnas_version(),
        "torch": _torch_version(),
        "python": platform.python_version(),
    }
    digest = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()
    return MemoKey(material, digest)


def _code_files(source: Path) -> dict[str, str]:
    """SHA-256 of the task file and of every module now loaded from its folder or below it (the
    modules it imports from next to it), by path relative to that folder. pbtnas's own modules and
    installed packages are left out: versions stand for them."""
    folder = source.parent
    paths = {source}
    # pbtnas itself and the Python installation (a virtualenv inside the folder, its scripts),
    # unless the task file lies inside them
    roots = {Path(__file__).resolve().parents[1], *(Path(p).resolve() for p in {sys.prefix, sys.exec_prefix, sys.base_prefix})}
    excluded = {root for root in roots if root not in folder.parents and root != folder}
    for module in list(sys.modules.values()):
        name = getattr(module, "__file__", None)
        if not isinstance(name, str):
            continue
        path = Path(name).resolve()
        if folder not in path.parents or any(root == path or root in path.parents for root in excluded):
            continue
        if any(part in ("site-packages", "dist-packages") for part in path.parts) or not path.is_file():
            continue
        paths.add(path)
    return {str(path.relative_to(folder)): _sha256(path) for path in sorted(paths)}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _options(task: Task) -> dict:
    """The task's options as a run records them: every field (defaults too, so that an option set
    to its default is the same task), path options absolute (as ``portable_task_config`` makes them)."""
    from pbtnas.tasks import portable_task_config

    options = getattr(task, "options", None)
    values = dataclasses.asdict(options) if dataclasses.is_dataclass(options) and not isinstance(options, type) else {}
    # JSON round trip with str() for anything else: the key must be plain data
    return json.loads(json.dumps(portable_task_config(values), sort_keys=True, default=str))


def _pbtnas_version() -> str:
    from pbtnas.version import __version__

    return str(__version__)


def _torch_version() -> str:
    import torch

    return str(torch.__version__)


def memo_path(key: MemoKey) -> Path:
    """Where the memo of ``key`` lives (the folder is not created)."""
    root = os.environ.get("PBTNAS_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "pbtnas")
    return Path(root) / "checks" / f"{key.digest}.json"


def covered(key: MemoKey) -> set[str]:
    """The parts of the check that passed before for ``key``; empty when nothing is remembered or
    the memo file cannot be read, is damaged, or belongs to another key."""
    try:
        data = json.loads(memo_path(key).read_text(encoding="utf-8"))
    except Exception:  # noqa: BLE001 - missing, unreadable, not JSON, not UTF-8: simply not remembered
        return set()
    if not isinstance(data, dict) or data.get("key") != key.material or not isinstance(data.get("covers"), list):
        return set()
    return {part for part in data["covers"] if part in PARTS}


def remember(key: MemoKey, parts: set[str], seconds: float) -> bool:
    """Record that ``parts`` of the check passed for ``key`` (with what was remembered before);
    False when the memo cannot be written (a read-only cache folder): the run goes on regardless."""
    from pbtnas.rundir.atomic import atomic_write_bytes

    record = {
        "key": key.material,
        "covers": sorted(covered(key) | (parts & set(PARTS))),
        "seconds": round(seconds, 2),
        "passed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    path = memo_path(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, json.dumps(record, indent=1).encode(), durable=False)
    except OSError:  # WriteError is one too: a memo is an optimisation, never a reason to fail
        return False
    return True


def forget(key: MemoKey) -> None:
    """Remove the memo of ``key`` (its check failed now, whatever passed before)."""
    try:
        memo_path(key).unlink()
    except OSError:
        pass


def needed_parts(evaluate: bool, fresh_process: bool, train: bool) -> set[str]:
    """The parts a check with these flags runs (the fresh-process evaluation needs ``evaluate``)."""
    flags = {"evaluate": evaluate, "fresh_process": evaluate and fresh_process, "train": train}
    return {part for part, on in flags.items() if on}


def check_once(task: Task, *, seed: int, evaluate: bool, fresh_process: bool, train: bool, recall: bool) -> CheckOutcome:
    """Run :func:`check_task` unless ``recall`` and a memo shows that this exact task passed every
    part needed; remember a pass (for user tasks), forget the memo on a failure."""
    key = memo_key(task)
    parts = needed_parts(evaluate, fresh_process, train)
    if recall and key is not None and parts <= covered(key):
        return CheckOutcome(seconds=0.0, recalled=True)
    try:
        report = check_task(task, seed=seed, train=train, evaluate=evaluate, fresh_process=fresh_process)
    except PbtnasError:
        if key is not None:
            forget(key)
        raise
    remembered = key is not None and remember(key, parts, report.seconds)
    return CheckOutcome(seconds=report.seconds, remembered=remembered, report=report)


def outcome_line(outcome: CheckOutcome, task_name: str) -> str | None:
    """The one console line about a run's check (None when there is nothing worth saying: a
    built-in task's check, which is not remembered)."""
    again = f"'pbtnas check {_shown(task_name)}' runs it again"
    if outcome.recalled:
        return f"task check skipped: this exact task (files, options, pbtnas version) passed it before; {again}"
    if outcome.remembered:
        return f"task check passed in {outcome.seconds:.1f} s; remembered, so runs of this unchanged task skip it ({again})"
    return None


def _shown(task_name: str) -> str:
    """A task file as the user would type it: relative to the working directory when below it."""
    where, sep, attr = task_name.rpartition(":")
    if sep and where.endswith(".py") and os.path.isabs(where):
        relative = os.path.relpath(where)
        if not relative.startswith(".."):
            return f"{relative}:{attr}"
    return task_name
