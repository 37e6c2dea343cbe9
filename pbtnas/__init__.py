"""pbtnas: population-based neural architecture search by architecture mixing with
shrink-perturb weight inheritance (PBT-NAS, Chebykin et al., arXiv 2307.15621).

Library entry points::

    import pbtnas
    summary = pbtnas.run("classification", out="runs/demo", population=8, steps=10)
    net = pbtnas.load("exported/")          # a plain torch.nn.Module
"""

from __future__ import annotations

from .config import RunConfig, config_from_dict
from .errors import PbtnasError
from .operators import mix, mutate, shrink_perturb
from .space import Gene, SearchSpace
from .state import MemberState
from .task import Task

__version__ = "0.1.0"


def run(source: str | dict, out: str, progress: bool = False, **overrides) -> dict:
    """Run a search from a preset name, a YAML path or a config dict; return its summary."""
    from .config import load_config_source
    from .runner import Runner

    data = dict(source) if isinstance(source, dict) else load_config_source(source)
    task_overrides = overrides.pop("task", {})
    data.update(overrides)
    data["task"] = {**data.get("task", {}), **task_overrides}
    config = config_from_dict(data)
    return Runner(config, out, progress=progress).start().run()


def load(directory: str):
    """Load an exported network (see ``pbtnas export``) as a ready ``torch.nn.Module``."""
    from .export import load as _load

    return _load(directory)


__all__ = [
    "Gene", "MemberState", "PbtnasError", "RunConfig", "SearchSpace", "Task",
    "config_from_dict", "load", "mix", "mutate", "run", "shrink_perturb",
]
