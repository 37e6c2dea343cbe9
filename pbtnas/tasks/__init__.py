"""Task registry: task name -> ``module:Class``, imported only when a run asks for it.

Heavy optional dependencies (dm_control, gymnasium, ...) are therefore never imported by a run
that does not use them.
"""

from __future__ import annotations

import importlib

from ..errors import ConfigError
from ..task import Task, parse_options

TASKS: dict[str, str] = {
    "classification": "pbtnas.tasks.classification:ClassificationTask",
    "gan": "pbtnas.tasks.gan.task:GanTask",
    "rl": "pbtnas.tasks.rl.task:RLTask",
    "simulated": "pbtnas.tasks.simulated:SimulatedTask",
}

_CACHE: dict[str, Task] = {}


def task_class(name: str) -> type[Task]:
    if name not in TASKS:
        raise ConfigError(f"unknown task {name!r}; known tasks: {sorted(TASKS)}")
    module_name, _, cls_name = TASKS[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("pbtnas"):
            raise ConfigError(f"task {name!r} is not available in this version of pbtnas") from exc
        raise
    return getattr(module, cls_name)


def build_task(task_config: dict) -> Task:
    """Build (or reuse, per process) the task described by a config's ``task`` section."""
    import json

    config = dict(task_config)
    name = config.pop("name", None)
    if not name:
        raise ConfigError("config section 'task' needs a 'name'")
    key = json.dumps({"name": name, **config}, sort_keys=True, default=str)
    if key not in _CACHE:
        cls = task_class(name)
        _CACHE[key] = cls(parse_options(cls.Options, config, where="task"))
    return _CACHE[key]
