"""``run_info.json``: what viewing a run needs to know about its task, recorded as data at start.

``pbtnas status`` and ``pbtnas report`` import no task code (a run directory someone shared may
name any file as its task). Whatever they show that only the task knows - the search space (genes,
options, which own weights), the task's option defaults (to say what differs from a preset), the
metric names and the final metric's direction - is written here once, atomically, when the run
starts. A run made before this file existed is shown from its raw data (genomes as they are,
options as seen in the run), never by importing its task.

The file also records, at start, a task *file*'s absolute path and SHA-256, and those of a task
*module*'s file unless it is installed code: the verbs that must import task code (export, soup,
resume, ``pbtnas.load``) import it only if it is still that file (see :mod:`pbtnas.rundir.trust`).

This module imports neither torch nor a task, so ``pbtnas status`` stays quick.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

RUN_INFO_FILE = "run_info.json"
RUN_INFO_VERSION = 1
#: what a ``run_info.json`` larger than this is taken to be: damaged, not read (a run's whole space
#: and option list fit in a few hundred KiB)
MAX_BYTES = 16 << 20


def task_file(name: object) -> str | None:
    """The file of a ``task.name`` of the form ``path/to/file.py:Class``; ``None`` for a built-in
    task, an installed plugin or an importable module."""
    if not isinstance(name, str):
        return None
    where, sep, _ = name.rpartition(":")
    return where if sep and where.endswith(".py") else None


def task_module(name: object) -> str | None:
    """The module of a ``task.name`` of the form ``package.module:Class``; ``None`` for a task
    file, a built-in task or an installed plugin (names without a colon)."""
    if not isinstance(name, str):
        return None
    where, sep, attr = name.rpartition(":")
    return where if sep and where and attr and not where.endswith(".py") else None


def sha256_of(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def task_code_record(name: object) -> dict:
    """``{"file": absolute path, "sha256": hex}`` of a task file, and ``{"module": name, "file":
    resolved path, "sha256": hex}`` of a task module that is not installed code (nothing for
    other tasks); what the trust check compares against later. Called where the task was just
    built, so a module is recorded as the file that was imported."""
    where = task_file(name)
    if where is None:
        module = task_module(name)
        if module is None:
            return {}
        from pbtnas.rundir.trust import user_module_file  # trust imports this module

        found = user_module_file(module)
        if found is None:  # installed code, or nothing a file provides: no trust needed
            return {}
        try:
            return {"module": module, "file": str(found), "sha256": sha256_of(found)}
        except OSError:
            return {"module": module, "file": str(found), "sha256": None}
    full = os.path.abspath(where)
    try:
        return {"file": full, "sha256": sha256_of(full)}
    except OSError:  # the task was built from it a moment ago; a vanished file is recorded as such
        return {"file": full, "sha256": None}


def run_info_of(task: Any, task_config: dict, start_dir: str | None = None) -> dict:
    """The ``run_info.json`` content for a task built from ``task_config`` (called at run start,
    when the task is built anyway); ``start_dir`` is the folder the run started from, importable
    in a resume from elsewhere (:func:`pbtnas.tasks.start_dir_for`)."""
    from pbtnas.options import options_doc

    try:
        defaults = {row["name"]: row["default"] for row in options_doc(type(task.options))}
    except (TypeError, AttributeError):  # options that are not a dataclass: nothing to compare with
        defaults = {}
    return {
        "version": RUN_INFO_VERSION,
        "task": {"name": task_config.get("name"), "class": type(task).__name__, **task_code_record(task_config.get("name"))},
        "describe": task.describe(),
        "option_defaults": defaults,
        "space": {"name": task.space.name, "genes": task.space.describe()},
        "fitness_name": task.fitness_name,
        "final_metric_name": task.final_metric_name,
        "final_metric_higher_is_better": getattr(task, "final_metric_higher_is_better", None),
        "start_dir": start_dir,
    }


def write_run_info(run_dir: str | Path, task: Any, task_config: dict, start_dir: str | None = None) -> None:
    """Write ``run_info.json`` into ``run_dir`` atomically (at run start)."""
    from pbtnas.rundir.atomic import atomic_write_bytes

    # a user's option default or describe() may hold anything: written as its repr, never a crash
    text = json.dumps(run_info_of(task, task_config, start_dir), indent=2, default=_plain)
    atomic_write_bytes(Path(run_dir) / RUN_INFO_FILE, (text + "\n").encode())


def _plain(obj: Any) -> Any:
    if hasattr(obj, "item"):  # numpy and torch scalars
        try:
            return obj.item()
        except (TypeError, ValueError):
            pass
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    return str(obj) if isinstance(obj, Path) else repr(obj)


def read_run_info(run_dir: str | Path) -> dict | None:
    """``run_info.json`` of ``run_dir``, or ``None`` when the run has none (made by an older
    pbtnas) or it is unreadable: a viewer then shows the run's raw data. A symbolic link is not
    followed (a run directory is data that stays inside itself)."""
    path = Path(run_dir) / RUN_INFO_FILE
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_BYTES:
            return None
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("version") == RUN_INFO_VERSION else None


def recorded_space(info: dict | None) -> Any:
    """The run's :class:`~pbtnas.search.space.SearchSpace` rebuilt from ``run_info.json`` (no task
    import), or ``None`` when there is no usable record."""
    from pbtnas.errors import PbtnasError
    from pbtnas.search.space import Gene, SearchSpace

    space = (info or {}).get("space")
    if not isinstance(space, dict) or not isinstance(space.get("genes"), list):
        return None
    try:
        genes = [
            Gene(
                str(row["gene"]),
                tuple(row["options"]),
                owns_weights=bool(row.get("owns_weights", True)),
                doc=str(row.get("doc", "")),
                kind=str(row.get("kind", "architecture")),
            )
            for row in space["genes"]
        ]
        return SearchSpace(genes, name=str(space.get("name", "space")))
    except (PbtnasError, KeyError, TypeError):
        return None


def recorded_defaults(info: dict | None) -> dict:
    """The task's option defaults as recorded at start (empty without a record)."""
    defaults = (info or {}).get("option_defaults")
    return dict(defaults) if isinstance(defaults, dict) else {}
