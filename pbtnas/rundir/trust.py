"""Whether a verb may import the task file a run (or an export) names.

A run directory or an export folder is data that people share; its ``config.yaml`` or
``export.json`` may name any file as the task (``task.name: /path/evil.py:Cls``), and importing
it runs that file. ``export``, ``soup``, ``resume`` and ``pbtnas.load`` therefore import a task
file only when

* it lies outside the run (or export) folder - a folder someone handed over cannot bring its own
  code - and
* it is the file the run recorded when it started: same absolute path, same SHA-256 (see
  :mod:`pbtnas.rundir.runinfo`), so a file changed since then is not run in its place;

otherwise they refuse with one line naming the file, unless the user says ``--trust-code``
(``trust_code=True``), the convention Hugging Face's ``trust_remote_code`` made familiar.
Built-in tasks, installed entry points and importable modules (``package.module:Class``) are
code the user installed and need no trust. ``status`` and ``report`` never import a task at all.
"""

from __future__ import annotations

import os
from pathlib import Path

from pbtnas.errors import ConfigError
from pbtnas.rundir.runinfo import sha256_of, task_file

#: how the refusal tells the user to go on anyway
HOW_TO_TRUST = "if you trust it, pass --trust-code (trust_code=True in Python)"


class UntrustedCodeError(ConfigError):
    """A run or export names a task file that is not the one recorded at start, or lies inside
    the folder being opened; nothing was imported."""


def check_task_code(task_config: object, folder: str | Path, recorded: dict | None, trust_code: bool = False, what: str = "run folder") -> None:
    """Raise :class:`UntrustedCodeError` unless the task of ``task_config`` may be imported.

    ``folder`` is the run directory (or export folder) being opened, ``recorded`` the ``task``
    record of its ``run_info.json`` (or export's) with ``file`` and ``sha256``; ``what`` names the
    folder in the message. With ``trust_code`` everything is allowed."""
    name = task_config.get("name") if isinstance(task_config, dict) else None
    where = task_file(name)
    if where is None or trust_code:
        return
    full = Path(os.path.abspath(where))
    if _inside(full, Path(folder)):
        raise UntrustedCodeError(
            f"the task file {full} lies inside the {what} {folder}: a {what} is data, and code it brings is not run; {HOW_TO_TRUST}"
        )
    record = recorded if isinstance(recorded, dict) else {}
    expected = record.get("sha256")
    if not isinstance(expected, str) or not expected:
        raise UntrustedCodeError(
            f"the task file {full} was not recorded with its SHA-256 when the run started (a run made by an "
            f"older pbtnas, or a damaged record), so it cannot be checked; {HOW_TO_TRUST}"
        )
    if os.path.abspath(str(record.get("file") or "")) != str(full):
        raise UntrustedCodeError(f"the task file {full} is not the file the run recorded at start ({record.get('file')}); {HOW_TO_TRUST}")
    if not full.is_file():
        return  # nothing to run: building the task says the file is missing, in one line
    try:
        actual = sha256_of(full)
    except OSError as exc:
        raise UntrustedCodeError(f"the task file {full} cannot be read to check it ({exc.strerror or exc})") from None
    if actual != expected:
        raise UntrustedCodeError(
            f"the task file {full} has changed since the run started (SHA-256 {actual[:12]}..., recorded {expected[:12]}...); {HOW_TO_TRUST}"
        )


def _inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` lies in ``folder`` once symbolic links are followed (either way round: a
    link in the folder to a file elsewhere, or a path elsewhere that leads into the folder)."""
    root = folder.resolve()
    for candidate in (path, path.resolve()):
        try:
            candidate.relative_to(root)
            return True
        except ValueError:
            continue
    try:
        Path(os.path.abspath(path)).relative_to(Path(os.path.abspath(folder)))
        return True
    except ValueError:
        return False


def check_run_task(run_dir: str | Path, task_config: object, trust_code: bool = False) -> None:
    """:func:`check_task_code` for a run directory, against what its ``run_info.json`` recorded."""
    from pbtnas.rundir.runinfo import read_run_info

    info = read_run_info(run_dir) or {}
    check_task_code(task_config, run_dir, info.get("task"), trust_code, "run folder")
