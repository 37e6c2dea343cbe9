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

A module's file is found without running any code (:func:`locate_module`): the dotted name is
walked one component at a time with :class:`importlib.machinery.PathFinder`, over the same
``sys.path`` and import roots the real import uses; ``importlib.util.find_spec`` would import
the parent packages - the very code being checked.
"""

from __future__ import annotations

import importlib.machinery
import os
import site
import sys
import sysconfig
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pbtnas.errors import ConfigError
from pbtnas.rundir.runinfo import code_option_modules, sha256_of, task_file, task_module

#: how the refusal tells the user to go on anyway
HOW_TO_TRUST = "if you trust it, pass --trust-code (trust_code=True in Python)"


class UntrustedCodeError(ConfigError):
    """A run or export names task code that is not the one recorded at start, or lies inside
    the folder being opened; nothing was imported."""


@dataclass
class LocatedModule:
    """Where importing a dotted module name would take its code from, found without importing."""

    #: the module's own file (its ``__init__.py`` for a package); ``None`` when importing it runs
    #: no file found on the path: a module built into Python, a namespace package, one an
    #: installed import hook provides (an editable install), or none at all
    file: Path | None
    #: ``__init__.py`` files of parent packages not imported yet, which importing it would run
    parents: list[Path] = field(default_factory=list)


def search_path(roots: Sequence[str] = ()) -> list[str]:
    """``sys.path`` with ``roots`` added last, as :func:`pbtnas.tasks.add_import_roots` adds them."""
    path = list(sys.path)
    return path + [root for root in dict.fromkeys(roots) if root and root not in path and os.path.isdir(root)]


def locate_module(dotted: str, roots: Sequence[str] = ()) -> LocatedModule:
    """The file(s) ``import dotted`` would run, with ``roots`` (see :func:`search_path`) on the
    path; no code is executed. A module or parent package imported already is taken from
    ``sys.modules``, as the import itself would (its code has run; only a leaf's file is
    reported, to be checked like any other)."""
    parents: list[Path] = []
    path: list[str] = search_path(roots)
    parts = dotted.split(".")
    for i in range(len(parts)):
        name = ".".join(parts[: i + 1])
        last = i == len(parts) - 1
        loaded = sys.modules.get(name)
        if loaded is not None:
            if last:
                where = getattr(loaded, "__file__", None)
                return LocatedModule(Path(where) if isinstance(where, str) and where else None, parents)
            package_path = getattr(loaded, "__path__", None)
            if package_path is None:  # not a package: the import fails without running anything
                return LocatedModule(None, parents)
            path = [str(p) for p in package_path]
            continue
        if i == 0 and (importlib.machinery.BuiltinImporter.find_spec(name) or importlib.machinery.FrozenImporter.find_spec(name)):
            return LocatedModule(None, parents)  # compiled into the interpreter: no file to run
        # full name, one component deeper each time: only the tail is looked up, in `path`
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None:  # not on the path: an installed import hook has it, or nothing does
            return LocatedModule(None, parents)
        origin = Path(spec.origin) if spec.has_location and spec.origin else None
        if last:
            return LocatedModule(origin, parents)
        if origin is not None:
            parents.append(origin)
        locations = spec.submodule_search_locations
        if not locations:  # a plain module asked for a submodule: the import fails
            return LocatedModule(None, parents)
        path = [str(p) for p in locations]
    return LocatedModule(None, parents)  # pragma: no cover - the loop always returns


def _installed_roots() -> list[Path]:
    """Folders whose files belong to installed distributions: the standard library and
    site-packages of this interpreter (and of the one a virtual environment is based on), every
    ``site-packages``/``dist-packages`` folder on ``sys.path``, and pbtnas's own package."""
    import pbtnas

    found: set[str] = set()
    for scheme_vars in ({}, {"base": sys.base_prefix, "platbase": sys.base_exec_prefix}):
        paths = sysconfig.get_paths(vars=scheme_vars)
        found.update(paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if paths.get(key))
    try:
        found.update(site.getsitepackages())
    except AttributeError:  # some embedded interpreters have no site.getsitepackages
        pass
    if site.ENABLE_USER_SITE and site.getusersitepackages():
        found.add(site.getusersitepackages())
    found.update(p for p in sys.path if os.path.basename(os.path.normpath(p or ".")) in ("site-packages", "dist-packages"))
    found.add(os.path.dirname(os.path.abspath(pbtnas.__file__)))
    return [Path(os.path.realpath(p)) for p in found if p]


def is_installed_code(path: str | Path) -> bool:
    """Whether the file ``path`` (symbolic links followed) belongs to installed code
    (:func:`_installed_roots`): a module there needs no trust."""
    real = Path(os.path.realpath(path))
    return any(real.is_relative_to(root) for root in _installed_roots())


def user_module_file(dotted: str, roots: Sequence[str] = ()) -> Path | None:
    """The resolved file of module ``dotted`` when it is user code, the kind whose path and
    SHA-256 a run records at start; ``None`` for installed code or a module with no file."""
    located = locate_module(dotted, roots)
    if located.file is None or is_installed_code(located.file):
        return None
    return Path(os.path.realpath(located.file))


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
    from pbtnas.errors import PbtnasError
    from pbtnas.tasks import task_class

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
    from pbtnas.tasks import _REGISTERED

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
        actual = sha256_of(full)
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
    from pbtnas.rundir.runinfo import read_run_info
    from pbtnas.tasks import recorded_start_dir

    info = read_run_info(run_dir) or {}
    roots = [recorded_start_dir(run_dir) or os.getcwd()]
    check_task_code(task_config, run_dir, info.get("task"), trust_code, "run folder", roots)
