"""Whether a verb may import the task code a run (or an export) names.

A run directory or an export folder is data that people share; its ``config.yaml`` or
``export.json`` may name any file as the task (``task.name: /path/evil.py:Cls``), or any module
(``task.name: evil:Cls``) that a file in the run folder, in the folder the command runs from
(``python -m pbtnas`` puts it first on ``sys.path``) or in the run's recorded start folder would
provide; importing it runs that file. ``export``, ``soup``, ``resume`` and ``pbtnas.load``
therefore import a task file, or a module that is not installed code, only when

* it lies outside the run (or export) folder - a folder someone handed over cannot bring its own
  code - and
* it is the file the run recorded when it started: same path, same SHA-256 (see
  :mod:`pbtnas.rundir.runinfo`), so a file changed since then is not run in its place;

otherwise they refuse with one line naming the file, unless the user says ``--trust-code``
(``trust_code=True``), the convention Hugging Face's ``trust_remote_code`` made familiar.
Built-in tasks, installed entry points and modules whose file belongs to an installed
distribution (site-packages or dist-packages, the standard library, pbtnas itself) are code the
user installed and need no trust. ``status`` and ``report`` never import a task at all.

The same rule covers code a task *option* names, where the task class declares the option in
``code_options`` (the RL task's ``task.env=my_envs:Name-v0`` imports ``my_envs``, which registers
the environment): the run records, at start, each such module that is not installed code
(:func:`pbtnas.rundir.runinfo.code_options_record`), and the verbs refuse a module that is not
that file, unchanged, outside the folder. Which options name code is read from the task's class,
never from the folder's records (a shared run could drop them): the class is imported once its
own code passed the check above, and the option modules are located, not imported.

A module's file is found without running any code (:func:`pbtnas.rundir.locate.locate_module`),
the way ``run_info.json`` recorded it at start. The check lives on the task floor: it asks the
task registry (a class handed over in this process, the task class that declares
``code_options``) and the run's recorded start folder.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from pbtnas.errors import ConfigError, PbtnasError
from pbtnas.rundir.locate import is_installed_code, locate_module, search_path
from pbtnas.rundir.runinfo import code_option_modules, read_run_info, task_file, task_module
from pbtnas.rundir.store import file_sha256
from pbtnas.tasks import _REGISTERED, recorded_start_dir, task_class

#: how the refusal tells the user to go on anyway
HOW_TO_TRUST = "if you trust it, pass --trust-code (trust_code=True in Python)"


class UntrustedCodeError(ConfigError):
    """A run or export names task code that is not the one recorded at start, or lies inside
    the folder being opened; nothing was imported."""


def check_task_code(
    task_config: object,
    folder: str | Path,
    recorded: dict | None,
    trust_code: bool = False,
    what: str = "run folder",
    roots: Sequence[str] = (),
) -> None:
    """Raise :class:`UntrustedCodeError` unless the task of ``task_config`` may be imported.

    ``folder`` is the run directory (or export folder) being opened, ``recorded`` the ``task``
    record of its ``run_info.json`` (or export's ``task_code``) with ``file`` and ``sha256``;
    ``what`` names the folder in the message; ``roots`` are the folders the verb adds to
    ``sys.path`` before it imports the task (where a module is looked for). With ``trust_code``
    everything is allowed.

    The modules the task's code options name (``task.env=my_envs:Name-v0``) are checked the same
    way against ``recorded["code_options"]``, after the task class itself: it is imported (its
    code passed the check) to read which of its options name code."""
    if trust_code:
        return
    name = task_config.get("name") if isinstance(task_config, dict) else None
    where = task_file(name)
    record = recorded if isinstance(recorded, dict) else {}
    if where is not None:
        full = Path(os.path.abspath(where))
        if _inside(full, Path(folder)):
            raise UntrustedCodeError(
                f"the task file {full} lies inside the {what} {folder}: a {what} is data, and code it brings is not run; {HOW_TO_TRUST}"
            )
        _check_recorded(full, os.path.abspath, record, f"the task file {full}")
    else:
        module = task_module(name)
        if module is not None and not _handed_over(name):
            _check_module(module, Path(folder), record, what, roots, f"the task module {module}")
    if isinstance(task_config, dict):
        _check_code_options(task_config, Path(folder), record, what, roots)


def _check_code_options(task_config: dict, folder: Path, record: dict, what: str, roots: Sequence[str]) -> None:
    """The check of the modules the task's code options name (``task.env=my_envs:Name-v0``):
    each must be installed code, or the file ``record["code_options"][option]`` names,
    unchanged, outside ``folder``. Nothing of them is imported."""
    cls = _task_class(task_config.get("name"), roots)
    if cls is None:
        return
    modules = code_option_modules(cls, task_config)
    if not modules:
        return
    recorded = record.get("code_options")
    recorded = recorded if isinstance(recorded, dict) else {}
    for option, module in modules.items():
        own = recorded.get(option)
        own = own if isinstance(own, dict) else None
        subject = f"the module {module} that task.{option} names"
        _check_module(module, folder, own, what, roots, subject)


def _task_class(name: object, roots: Sequence[str]) -> type | None:
    """The task class ``name`` refers to, imported with ``roots`` on ``sys.path`` for the time
    of the import, as the verb imports it next (its code has passed the check); ``None`` when it
    cannot be built at all: the verb's own import then fails with the same error, before any
    option is used."""
    if not isinstance(name, str):
        return None
    added = [root for root in search_path(roots) if root not in sys.path]
    sys.path.extend(added)
    try:
        return task_class(name)
    except PbtnasError:
        return None
    finally:
        for root in added:
            if root in sys.path:
                sys.path.remove(root)


def _handed_over(name: object) -> bool:
    """Whether the task is a class object handed over in this process (``pbtnas.run(MyTask)``),
    built without importing anything."""
    return name in _REGISTERED


def _check_module(module: str, folder: Path, record: dict | None, what: str, roots: Sequence[str], subject: str) -> None:
    """The check of a module about to be imported (a ``package.module:Class`` task, or one a code
    option names): installed code passes; any other module file must be the recorded one,
    unchanged, outside ``folder``, and no package it sits in may be imported from inside
    ``folder``. ``subject`` names the module in the message; ``record`` ``None``: the run
    recorded no module for that option."""
    located = locate_module(module, roots)
    for parent in located.parents:
        if _inside(parent, folder):
            raise UntrustedCodeError(
                f"{subject} is in a package whose file {parent} lies inside the {what} {folder}: a {what} is data, "
                f"and code it brings is not run; {HOW_TO_TRUST}"
            )
    if located.file is None:
        return  # no file runs: built into Python, an installed import hook, or not importable (the import says so)
    full = located.file
    if _inside(full, folder):
        raise UntrustedCodeError(
            f"{subject} is the file {full}, which lies inside the {what} {folder}: a {what} is data, and code it brings is not run; {HOW_TO_TRUST}"
        )
    if is_installed_code(full):
        return
    if record is None:
        raise UntrustedCodeError(
            f"{subject} (file {full}) is not a module the run recorded at start (the config names another one "
            f"since, or the run was made by an older pbtnas), so it cannot be checked; {HOW_TO_TRUST}"
        )
    _check_recorded(Path(os.path.realpath(full)), os.path.realpath, record, f"{subject} (file {full})")


def _check_recorded(full: Path, canonical: Callable[[str], str], record: dict, label: str) -> None:
    """Raise unless ``full`` is the file ``record`` names (paths compared after ``canonical``)
    and still has the recorded SHA-256; ``label`` names the code in the message."""
    expected = record.get("sha256")
    if not isinstance(expected, str) or not expected:
        raise UntrustedCodeError(
            f"{label} was not recorded with its SHA-256 when the run started (a run made by an "
            f"older pbtnas, or a damaged record), so it cannot be checked; {HOW_TO_TRUST}"
        )
    if canonical(str(record.get("file") or "")) != str(full):
        raise UntrustedCodeError(f"{label} is not the file the run recorded at start ({record.get('file')}); {HOW_TO_TRUST}")
    if not full.is_file():
        return  # nothing to run: building the task says the file is missing, in one line
    try:
        actual = file_sha256(full)
    except OSError as exc:
        raise UntrustedCodeError(f"{label} cannot be read to check it ({exc.strerror or exc})") from None
    if actual != expected:
        raise UntrustedCodeError(f"{label} has changed since the run started (SHA-256 {actual[:12]}..., recorded {expected[:12]}...); {HOW_TO_TRUST}")


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
    """:func:`check_task_code` for a run directory, against what its ``run_info.json`` recorded.

    A module is looked for where ``export`` and ``resume`` will import it from: ``sys.path``, then
    the run's recorded start folder (``resume`` without one: the working directory). Looking in
    a folder the import then skips can only refuse more, never let a different file through: the
    roots go last, in the same order, both here and in the import."""
    info = read_run_info(run_dir) or {}
    roots = [recorded_start_dir(run_dir) or os.getcwd()]
    check_task_code(task_config, run_dir, info.get("task"), trust_code, "run folder", roots)
