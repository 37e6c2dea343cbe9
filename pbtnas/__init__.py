"""pbtnas: population-based neural architecture search by architecture mixing with
shrink-perturb weight inheritance (PBT-NAS, Chebykin et al., arXiv 2307.15621).

Library entry points::

    import pbtnas
    summary = pbtnas.run("classification", out="runs/demo", population=8, steps=10)
    net = pbtnas.load("exported/")          # a plain torch.nn.Module
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pbtnas.config import RunConfig, config_from_dict
from pbtnas.errors import PbtnasError, TaskContractError
from pbtnas.rundir.report_hints import ReportHints
from pbtnas.search.space import Gene, SearchSpace, hyperparameter
from pbtnas.tasks.base import Task
from pbtnas.version import __version__ as __version__

if TYPE_CHECKING:
    from pbtnas.search.operators import mix, mutate, shrink_perturb
    from pbtnas.search.state import MemberState
    from pbtnas.tasks.check import CheckReport, check_task
    from pbtnas.tasks.torch_task import Member, TorchTask

#: names imported on first use (PEP 562): they import torch, which ``pbtnas status`` and the
#: command line's start never need (torch takes seconds to import)
_LAZY = {
    "mix": "pbtnas.search.operators",
    "mutate": "pbtnas.search.operators",
    "shrink_perturb": "pbtnas.search.operators",
    "MemberState": "pbtnas.search.state",
    "CheckReport": "pbtnas.tasks.check",
    "check_task": "pbtnas.tasks.check",
    "Member": "pbtnas.tasks.torch_task",
    "TorchTask": "pbtnas.tasks.torch_task",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pbtnas' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups are plain attribute reads
    return value


def run(source: "str | dict | type[Task]", out: str, progress: bool = False, **overrides) -> dict:
    """Run a search and return its summary.

    ``source`` is a preset name, a YAML path, a task reference (``"file.py:Class"``,
    ``"package.module:Class"``), a config dict, or a :class:`Task` subclass (its
    options go in ``task={...}``). Other keyword arguments override config keys, e.g.
    ``population=8, steps=10, mode="async", backend="inprocess"``.
    """
    from pbtnas.config import load_config_source
    from pbtnas.engine.runner import make_runner

    data = _config_data(source, load_config_source)
    task_overrides = overrides.pop("task", {})
    data.update(overrides)
    data["task"] = {**data.get("task", {}), **task_overrides}
    if isinstance(data["task"].get("name"), type):
        from pbtnas.tasks import task_reference

        data["task"]["name"] = task_reference(data["task"]["name"])
    config = config_from_dict(data)
    return make_runner(config, out, progress=progress).start().run()


def _config_data(source, load_config_source) -> dict:
    if isinstance(source, type):
        from pbtnas.tasks import task_reference

        return {"task": {"name": task_reference(source)}}
    return dict(source) if isinstance(source, dict) else load_config_source(source)


def resume(run_dir: str, progress: bool = False, trust_code: bool = False, **overrides) -> dict:
    """Continue a run from its last finished step (after a crash, a kill or Ctrl-C) and return
    its summary; a finished run returns its summary at once.

    ``overrides`` change what ``pbtnas resume --set`` may change, under the same policy: the
    budget and where it runs (``steps``, ``workers``, ``backend``, ``ray_address``, loggers,
    ``task={"device": "cuda"}``, ...); each change is kept in ``config.yaml`` and journaled
    (``config_changed``). A change of the search itself (``seed``, ``population``, ``algorithm``,
    other task options) raises :class:`~pbtnas.errors.ConfigError` with the reason, before
    anything is written. ``steps`` above the steps done give a finished run more budget: it
    trains on from its final population and delivers again (the earlier delivery is kept).
    A task file is imported only if it is the one the run recorded at start and lies outside the
    run folder, unless ``trust_code`` (see :mod:`pbtnas.tasks.trust`)."""
    from pbtnas.engine.runner import resume_runner

    return resume_runner(run_dir, overrides=overrides, progress=progress, trust_code=trust_code).run()


def export_run(run_dir: str, out: str, which: str = "final", trust_code: bool = False) -> dict:
    """Export the run's final (or ``which="best"``) network into ``out`` (see ``pbtnas export``).
    (Not named ``export``: that is the name of the module :mod:`pbtnas.analysis.export`.)
    A task file is imported only if it is the one the run recorded at start and lies outside
    the run folder, unless ``trust_code`` (see :mod:`pbtnas.tasks.trust`)."""
    from pbtnas.analysis.export import export_run as _export_run

    return _export_run(run_dir, out, which=which, trust_code=trust_code)


def load(directory: str, trust_code: bool = False):
    """Load an exported network (see ``pbtnas export``) as a ready ``torch.nn.Module``. A task
    file is imported only if it is the one the export recorded and lies outside the folder (or
    with ``trust_code``); otherwise the export's TorchScript file is loaded, with a warning."""
    from pbtnas.analysis.export import load as _load

    return _load(directory, trust_code=trust_code)


__all__ = [
    "CheckReport",
    "Gene",
    "Member",
    "MemberState",
    "PbtnasError",
    "ReportHints",
    "RunConfig",
    "SearchSpace",
    "Task",
    "TaskContractError",
    "TorchTask",
    "check_task",
    "config_from_dict",
    "export_run",
    "hyperparameter",
    "load",
    "mix",
    "mutate",
    "resume",
    "run",
    "shrink_perturb",
]
