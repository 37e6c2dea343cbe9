"""Built-in presets. Every module in this package defines ``PRESETS: dict[str, dict]``.

A preset is a config dict of the same shape as a config YAML file, so ``pbtnas run PRESET`` and
``pbtnas run file.yaml`` go through the same validation.
"""

from __future__ import annotations

import copy
import importlib
import pkgutil

from pbtnas.errors import ConfigError


def all_presets() -> dict[str, dict]:
    presets: dict[str, dict] = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for name, config in getattr(module, "PRESETS", {}).items():
            if name in presets:
                raise RuntimeError(f"preset {name!r} defined twice")
            presets[name] = config
    return presets


def get_preset(name: str) -> dict:
    presets = all_presets()
    if name not in presets:
        raise ConfigError(f"unknown preset {name!r}; known presets: {', '.join(sorted(presets))}")
    return copy.deepcopy(presets[name])
