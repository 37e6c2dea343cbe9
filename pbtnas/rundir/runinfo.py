"""``run_info.json``: what viewing a run needs to know about its task, recorded as data at start.

``pbtnas status`` and ``pbtnas report`` import no task code (a run directory someone shared may
name any file as its task). Whatever they show that only the task knows - the search space (genes,
options, which own weights), the task's option defaults (to say what differs from a preset), the
metric names and the final metric's direction - is written here once, atomically, when the run
starts. A run made before this file existed is shown from its raw data (genomes as they are,
options as seen in the run), never by importing its task.

The file also records, at start, a task *file*'s absolute path and SHA-256, and those of a task
*module*'s file unless it is installed code: the verbs that must import task code (export, soup,
resume, ``pbtnas.load``) import it only if it is still that file (see :mod:`pbtnas.tasks.trust`).
The same goes for a module a task *option* names, where the task class declares that option in
``code_options`` (the RL task's ``task.env=my_envs:Name-v0``): recorded under ``code_options``,
option by option.

The task also says here what its report shows (``report``: its
:class:`~pbtnas.rundir.report_hints.ReportHints`, plain data), so the report need not special-case
task names.

This module imports neither torch nor a task, so ``pbtnas status`` stays quick.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeAlias

from pbtnas.rundir.locate import user_module_file
from pbtnas.rundir.report_hints import REPORT_KEY, ReportHints, hints_from_record
from pbtnas.rundir.store import file_sha256

if TYPE_CHECKING:
    from pbtnas.search.space import SearchSpace

#: a task's ``code_options``: option names whose values read ``package.module:Name``, or option ->
#: the function that reads the module out of a value (``None``: that same reading)
CodeOptions: TypeAlias = "tuple[str, ...] | Mapping[str, Callable[[object], str | None] | None]"


class RecordedTask(Protocol):
    """What ``run_info.json`` records of a task (:class:`~pbtnas.tasks.base.Task` has it all and
    documents each member; mypy checks that every ``Task`` fits). Declared here, on the run
    directory's floor, because the task floor sits above it."""

    #: the dataclass of the task's options
    Options: ClassVar[type]
    #: the options whose values name code to import
    code_options: ClassVar[CodeOptions]
    fitness_name: ClassVar[str]
    final_metric_name: ClassVar[str]
    final_metric_higher_is_better: ClassVar[bool | None]
    options: Any
    space: SearchSpace

    def describe(self) -> dict:
        """Facts about the task for the run directory."""
        ...

    def report_hints(self) -> ReportHints:
        """What the task's report shows."""
        ...


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


def task_code_record(name: object, task_class: type[RecordedTask] | None = None, task_config: Mapping | None = None) -> dict:
    """``{"file": absolute path, "sha256": hex}`` of a task file, and ``{"module": name, "file":
    resolved path, "sha256": hex}`` of a task module that is not installed code (nothing for
    other tasks); what the trust check compares against later. Called where the task was just
    built, so a module is recorded as the file that was imported. Given the task's class and
    config, the modules its code options name are added under ``code_options``
    (:func:`code_options_record`)."""
    record = _name_record(name)
    if task_class is not None:
        code = code_options_record(task_class, task_config or {})
        if code:
            record["code_options"] = code
    return record


def _name_record(name: object) -> dict:
    where = task_file(name)
    if where is None:
        module = task_module(name)
        return {} if module is None else _module_record(module)
    full = os.path.abspath(where)
    try:
        return {"file": full, "sha256": file_sha256(full)}
    except OSError:  # the task was built from it a moment ago; a vanished file is recorded as such
        return {"file": full, "sha256": None}


def _module_record(module: str) -> dict:
    """``{"module", "file", "sha256"}`` of a module that is user code; ``{}`` for installed code."""
    found = user_module_file(module)
    if found is None:  # installed code, or nothing a file provides: no trust needed
        return {}
    try:
        return {"module": module, "file": str(found), "sha256": file_sha256(found)}
    except OSError:
        return {"module": module, "file": str(found), "sha256": None}


def _module_part(value: object) -> str | None:
    """The module of a code option's ``package.module:Name`` value (the default reading)."""
    return task_module(value)


def declared_code_options(task_class: type[RecordedTask]) -> dict[str, Callable[[object], str | None]]:
    """The options ``task_class`` declares in ``code_options`` (values that name code to import),
    each with the function that reads the module out of a value: a tuple of option names means
    ``package.module:Name`` values; a dict maps an option to its own function (the RL task's
    ``env``), ``None`` meaning the same default."""
    declared = task_class.code_options
    if isinstance(declared, str):  # one name written without the tuple's comma
        return {declared: _module_part}
    if isinstance(declared, Mapping):
        return {str(k): (v if callable(v) else _module_part) for k, v in declared.items()}
    return {str(k): _module_part for k in declared or ()}


def option_value(task_class: type[RecordedTask], task_config: Mapping, option: str) -> object:
    """The value ``option`` takes in a task built from ``task_config``: the config's, else the
    default of the class's ``Options`` dataclass (``None`` without one)."""
    if option in task_config:
        return task_config[option]
    options = task_class.Options
    if isinstance(options, type) and dataclasses.is_dataclass(options):
        for found in dataclasses.fields(options):
            if found.name == option:
                if found.default is not dataclasses.MISSING:
                    return found.default
                if found.default_factory is not dataclasses.MISSING:
                    return found.default_factory()
    return None


def code_option_modules(task_class: type[RecordedTask], task_config: Mapping) -> dict[str, str]:
    """``{option: module}`` for each code option of ``task_class`` whose value in
    ``task_config`` names a module to import (:func:`declared_code_options`); nothing is
    imported. A function that fails on a value is one :class:`ConfigError`."""
    from pbtnas.errors import ConfigError

    found: dict[str, str] = {}
    for option, module_of in declared_code_options(task_class).items():
        value = option_value(task_class, task_config, option)
        try:
            module = module_of(value)
        except Exception as exc:  # a task author's function: one line, not a traceback
            raise ConfigError(f"task.{option} {value!r}: cannot tell which module it names ({type(exc).__name__}: {exc})") from None
        if isinstance(module, str) and module:
            found[option] = module
    return found


def code_options_record(task_class: type[RecordedTask], task_config: Mapping) -> dict:
    """``{option: {"module", "file", "sha256"}}`` for each code option whose module is not
    installed code, as it is found now (called where the task was just built and checked, so the
    module is recorded as the file that was imported)."""
    out = {}
    for option, module in code_option_modules(task_class, task_config).items():
        record = _module_record(module)
        if record:
            out[option] = record
    return out


def run_info_of(task: RecordedTask, task_config: dict, start_dir: str | None = None) -> dict:
    """The ``run_info.json`` content for a task built from ``task_config`` (called at run start,
    when the task is built anyway); ``start_dir`` is the folder the run started from, importable
    in a resume from elsewhere (:func:`pbtnas.tasks.start_dir_for`)."""
    from pbtnas.errors import TaskContractError
    from pbtnas.options import options_doc

    hints = task.report_hints()
    if not isinstance(hints, ReportHints):  # a user's override: one line, before anything trains
        raise TaskContractError(f"{type(task).__name__}.report_hints() returned {type(hints).__name__}, not a pbtnas ReportHints")

    try:
        defaults = {row["name"]: row["default"] for row in options_doc(type(task.options))}
    except (TypeError, AttributeError):  # options that are not a dataclass: nothing to compare with
        defaults = {}
    return {
        "version": RUN_INFO_VERSION,
        "task": {"name": task_config.get("name"), "class": type(task).__name__, **task_code_record(task_config.get("name"), type(task), task_config)},
        "describe": task.describe(),
        "option_defaults": defaults,
        "space": {"name": task.space.name, "genes": task.space.describe()},
        "fitness_name": task.fitness_name,
        "final_metric_name": task.final_metric_name,
        "final_metric_higher_is_better": task.final_metric_higher_is_better,
        REPORT_KEY: hints.to_record(),
        "start_dir": start_dir,
    }


def write_run_info(run_dir: str | Path, info: dict) -> None:
    """Write ``info`` (:func:`run_info_of`, asked before the run directory is made, so that a
    task's broken ``report_hints`` leaves none behind) into ``run_dir`` atomically."""
    from pbtnas.rundir.atomic import atomic_write_bytes

    # a user's option default or describe() may hold anything: written as its repr, never a crash
    text = json.dumps(info, indent=2, default=_plain)
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


def recorded_hints(info: dict | None) -> ReportHints | None:
    """What the task asked its report to show, as recorded at start; ``None`` for a run made
    before tasks said so (its report falls back on the task's name)."""
    return hints_from_record((info or {}).get(REPORT_KEY))
