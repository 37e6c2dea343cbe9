"""Finding a task class from the name in a config's ``task.name``, in every process of a run.

A name is one of

* a built-in task: ``classification``, ``gan``, ``rl``, ``simulated``;
* an installed plugin: an entry point in the group ``pbtnas.tasks`` (``name = "pkg.mod:Class"``);
* an import path ``package.module:ClassName`` (the module must be importable where members run);
* a file path ``path/to/tasks.py:ClassName`` (imported as a module of its own, so its
  ``if __name__ == "__main__":`` block does not run again in workers).

Classes are imported only when a run asks for them, so heavy optional dependencies (dm_control,
gymnasium, ...) are never imported by a run that does not use them. The driver turns a relative
file path into an absolute one before it sends a job to a worker (:func:`portable_task_config`).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
import sys
from importlib import metadata
from pathlib import Path
from types import ModuleType

from pbtnas.errors import ConfigError, PbtnasError
from pbtnas.tasks.base import Task, parse_options

BUILTIN: dict[str, str] = {
    "classification": "pbtnas.tasks.classification:ClassificationTask",
    "gan": "pbtnas.tasks.gan.task:GanTask",
    "rl": "pbtnas.tasks.rl.task:RLTask",
    "simulated": "pbtnas.tasks.simulated:SimulatedTask",
}
#: kept for older code that looked the built-ins up here
TASKS = BUILTIN
ENTRY_POINT_GROUP = "pbtnas.tasks"

_CACHE: dict[str, Task] = {}
#: classes handed over as objects (``pbtnas.run(MyTask, ...)``), by their reference; lets the
#: in-process backend use a class defined in a notebook or a ``__main__`` script directly
_REGISTERED: dict[str, type] = {}


def plugin_tasks() -> dict[str, metadata.EntryPoint]:
    """Tasks installed by other packages under the entry-point group ``pbtnas.tasks``."""
    try:
        return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    except Exception:  # a broken distribution's metadata must not stop built-in tasks
        return {}


def known_names() -> list[str]:
    return sorted(set(BUILTIN) | set(plugin_tasks()))


def task_class(name: str) -> type[Task]:
    """The :class:`Task` subclass a config names; :class:`ConfigError` says what is wrong."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"task.name must be a task name or 'package.module:ClassName', got {name!r}")
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name in BUILTIN:
        return _builtin(name)
    plugins = plugin_tasks()
    if name in plugins:
        try:
            cls = plugins[name].load()
        except (Exception, SystemExit) as exc:
            raise ConfigError(f"task plugin {name!r} ({plugins[name].value}) failed to load: {_why(exc)}") from None
        return _checked(cls, f"plugin {name!r}")
    if ":" not in name:
        raise ConfigError(
            f"unknown task {name!r}; known tasks: {', '.join(known_names())}, or give 'package.module:ClassName' or 'path/to/file.py:ClassName'"
        )
    where, _, attr = name.rpartition(":")
    if not where or not attr:
        raise ConfigError(f"task.name {name!r} must look like 'package.module:ClassName'")
    module = _import_file(where) if where.endswith(".py") else _import_module(where)
    obj: object = module
    for part in attr.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise ConfigError(f"task.name {name!r}: {where} has no attribute {attr!r}")
    return _checked(obj, repr(name))


def _builtin(name: str) -> type[Task]:
    module_name, _, cls_name = BUILTIN[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("pbtnas"):
            raise ConfigError(f"task {name!r} is not available in this version of pbtnas") from exc
        raise
    return getattr(module, cls_name)


def _import_module(module_name: str) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ConfigError(
                f"task module {module_name!r} cannot be imported (no module {exc.name!r}); "
                "is it installed or on PYTHONPATH? A file can be named as "
                "'path/to/file.py:ClassName'"
            ) from None
        raise ConfigError(f"task module {module_name!r} failed to import: {type(exc).__name__}: {exc}") from None
    except (Exception, SystemExit) as exc:
        raise ConfigError(f"task module {module_name!r} failed to import: {_why(exc)}") from None


def _why(exc: BaseException) -> str:
    """What went wrong in a user's code, for one error line. A ``sys.exit()`` at import time is
    named as such: caught like any error, it would otherwise end pbtnas itself, with that exit
    status and no output (exit 0 looked like a finished run)."""
    if isinstance(exc, SystemExit):
        return f"it called sys.exit({exc.code!r}); a task's module must not exit when imported (put script code under if __name__ == '__main__':)"
    return f"{type(exc).__name__}: {exc}"


def _import_file(path: str) -> ModuleType:
    full = os.path.abspath(path)
    if not os.path.isfile(full):
        raise ConfigError(f"task file {path!r} does not exist (a relative path is read from the current directory)")
    # A script run as `python file.py` is already loaded as __main__ (or __mp_main__ in a spawned
    # worker): reuse it instead of executing the file a second time.
    for loaded in ("__main__", "__mp_main__"):
        module = sys.modules.get(loaded)
        if module is not None and os.path.abspath(getattr(module, "__file__", "") or "") == full:
            return module
    stem = os.path.splitext(os.path.basename(full))[0]
    module_name = f"pbtnas_user_{stem}_{abs(hash(full)) % 10**8}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, full)
    if spec is None or spec.loader is None:
        raise ConfigError(f"task file {path!r} cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look classes up here
    sys.path.insert(0, os.path.dirname(full))  # the file may import modules next to it
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        del sys.modules[module_name]
        raise ConfigError(f"task file {path!r} failed to import: {_why(exc)}") from None
    return module


def _checked(obj: object, what: str) -> type[Task]:
    if not inspect.isclass(obj) or not issubclass(obj, Task):
        raise ConfigError(f"task {what} is {obj!r}, which is not a subclass of pbtnas.Task (or of pbtnas.TorchTask)")
    missing = sorted(getattr(obj, "__abstractmethods__", ()))
    if missing:
        raise ConfigError(f"task class {obj.__name__} does not implement {', '.join(missing)}")
    if not hasattr(obj, "Options"):
        raise ConfigError(f"task class {obj.__name__} has no Options dataclass")
    return obj


def task_reference(cls: type) -> str:
    """The ``task.name`` under which a run records a task class, so workers, ``resume``,
    ``export`` and ``pbtnas.load`` find it again. The class is also remembered in this process."""
    _checked(cls, repr(cls))
    for name in BUILTIN:
        if BUILTIN[name] == f"{cls.__module__}:{cls.__qualname__}":
            return name
    module = sys.modules.get(cls.__module__)
    if "<locals>" in cls.__qualname__:  # defined inside a function: only this process can build it
        reference = f"{cls.__module__}:{cls.__qualname__}"
        _REGISTERED[reference] = cls
        return reference
    if cls.__module__ in ("__main__", "__mp_main__") or cls.__module__.startswith("pbtnas_user_"):
        path = getattr(module, "__file__", None)
        if not path:
            reference = f"{cls.__module__}:{cls.__qualname__}"
            _REGISTERED[reference] = cls  # usable by the in-process backend only
            return reference
        reference = f"{_display_path(path)}:{cls.__qualname__}"
    else:
        reference = f"{cls.__module__}:{cls.__qualname__}"
    _REGISTERED[reference] = cls
    return reference


def _display_path(path: str) -> str:
    full = os.path.abspath(path)
    relative = os.path.relpath(full)
    return full if relative.startswith("..") else relative


def importable_elsewhere(name: str) -> bool:
    """Whether a process other than this one can find the task (false for a class defined in a
    notebook or an interactive session, which only the in-process backend can run)."""
    if name in BUILTIN or name in plugin_tasks():
        return True
    where, _, attr = name.rpartition(":")
    return bool(where) and where not in ("__main__", "__mp_main__") and "<locals>" not in attr


#: endings of task option names that name a file or folder (``data_path``, ``data_root``, ...)
PATH_OPTION_SUFFIXES = ("_path", "_root", "_dir", "_file")


def portable_task_config(task_config: dict) -> dict:
    """The task section as sent to workers and recorded in the run: a relative task file becomes
    absolute, and so does a relative path in an option whose name ends in ``_path``, ``_root``,
    ``_dir`` or ``_file`` when it names something that exists from this working directory (so
    that ``resume``, ``export`` and workers started elsewhere find the same data)."""
    config = dict(task_config)
    name = str(config.get("name", ""))
    where, sep, attr = name.rpartition(":")
    if sep and where.endswith(".py"):
        config["name"] = f"{os.path.abspath(where)}:{attr}"
    for key, value in task_config.items():
        if (
            key.endswith(PATH_OPTION_SUFFIXES)
            and isinstance(value, str)
            and value
            and not value.startswith("~")  # expanded where it is used, on the machine that reads it
            and not os.path.isabs(value)
            and os.path.exists(value)
        ):
            config[key] = os.path.abspath(value)
    return config


def import_roots(task_config: dict, start_dir: str | None = None) -> list[str]:
    """Folders a worker adds to ``sys.path`` before building the task: where a user's task
    module was found in the driver (not needed for built-in tasks or installed plugins), the
    task file's folder (the modules it imports from beside it) and ``start_dir``, the folder the
    run started from (a ``task.env=my_envs:Name-v0`` module there)."""
    roots = []
    name = str(task_config.get("name", ""))
    where, sep, _ = name.rpartition(":")
    if sep and where.endswith(".py"):
        roots.append(os.path.dirname(os.path.abspath(where)))
    elif sep and name not in BUILTIN:
        module = sys.modules.get(where)
        path = getattr(module, "__file__", None) if module else None
        if path:
            root = os.path.dirname(os.path.abspath(path))
            for _ in range(where.count(".") + (1 if os.path.basename(path) == "__init__.py" else 0)):
                root = os.path.dirname(root)
            roots.append(root)
    if start_dir:
        roots.append(os.path.abspath(start_dir))
    return list(dict.fromkeys(roots))


def add_import_roots(roots: list[str] | tuple[str, ...]) -> None:
    """Put the folders ``roots`` (see :func:`import_roots`) on this process's ``sys.path``. They
    go last: a file that happens to lie in the start folder never hides an installed package."""
    for root in roots:
        if root not in sys.path and os.path.isdir(root):
            sys.path.append(root)


def recorded_start_dir(run_dir: str | Path) -> str | None:
    """The folder the run in ``run_dir`` was started from, as its ``run_info.json`` recorded it;
    ``None`` for a new run, a run made before it was recorded, or a folder that is gone. A
    recorded folder inside the run directory is ignored: a run directory is data, and code it
    brings is not put on the import path (docs/custom-task.md)."""
    from pbtnas.rundir.runinfo import read_run_info

    info = read_run_info(run_dir) or {}
    start = info.get("start_dir")
    if not isinstance(start, str) or not os.path.isabs(start) or not os.path.isdir(start):
        return None
    run = os.path.realpath(run_dir)
    if os.path.commonpath([os.path.realpath(start), run]) == run:
        return None
    return start


def start_dir_for(run_dir: str | Path) -> str:
    """The start folder of the run in ``run_dir`` (:func:`recorded_start_dir`; this process's
    working directory for a new run), put on ``sys.path`` here: a ``task.env=my_envs:Name-v0``
    module beside where the run started is found even by the ``pbtnas`` command (whose
    ``sys.path`` does not hold the working directory) and by a resume from another folder."""
    start = recorded_start_dir(run_dir) or os.getcwd()
    add_import_roots([start])
    return start


def build_task(task_config: dict, roots: list[str] | None = None) -> Task:
    """Build (or reuse, per process) the task described by a config's ``task`` section."""
    add_import_roots(roots or ())
    config = dict(task_config)
    name = config.pop("name", None)
    if not name:
        raise ConfigError("config section 'task' needs a 'name'")
    key = json.dumps({"name": name, **config}, sort_keys=True, default=str)
    if key not in _CACHE:
        cls = task_class(name)
        options = parse_options(cls.Options, config, where="task")
        try:
            task = cls(options)
        except PbtnasError:
            raise
        except (Exception, SystemExit) as exc:  # a user's constructor: one line, not a traceback
            raise ConfigError(f"task class {cls.__name__} failed to build: {_why(exc)}") from None
        _CACHE[key] = task
    return _CACHE[key]
