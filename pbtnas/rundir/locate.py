"""Where importing a module would take its code from, found without importing it, and whether
that file is installed code (which needs no trust).

A module's file is found without running any code (:func:`locate_module`): the dotted name is
walked one component at a time with :class:`importlib.machinery.PathFinder`, over the same
``sys.path`` and import roots the real import uses; ``importlib.util.find_spec`` would import
the parent packages - the very code being checked.

The run directory's ``run_info.json`` records, at start, the file of each task module (and code
option module) that is not installed code (:func:`pbtnas.rundir.runinfo.task_code_record`); the
trust check (:mod:`pbtnas.tasks.trust`) compares against that record before any import.
"""

from __future__ import annotations

import importlib.machinery
import os
import site
import sys
import sysconfig
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: pbtnas's own package folder (``pbtnas/``): installed code, wherever pbtnas is installed from
PACKAGE_DIR = Path(__file__).resolve().parents[1]


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
    found.add(str(PACKAGE_DIR))
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
