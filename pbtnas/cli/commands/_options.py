"""Budget and execution options shared by ``pbtnas run`` and ``pbtnas compare``."""

from __future__ import annotations

import argparse
import os
import time

from pbtnas.cli.commands._agree import flag_name, refuse_disagreeing
from pbtnas.config import RunConfig, apply_overrides, config_from_dict, load_config_source, parse_value
from pbtnas.errors import ConfigError
from pbtnas.options import coerce_value, option_specs


def add_budget_options(parser: argparse.ArgumentParser, algorithm: bool = True) -> None:
    parser.add_argument(
        "source",
        metavar="PRESET|CONFIG.yaml|FILE.py:CLASS",
        help="a preset name (see 'pbtnas presets'), a YAML config file, or a task "
        "(file.py:Class, package.module:Class, a plugin name) run with the default options",
    )
    add_config_flags(parser, RUN_FLAGS if algorithm else RUN_FLAGS[1:])
    parser.add_argument("--device", help="torch device for training, e.g. cpu or cuda (sets task.device)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any config key; task options as task.KEY=VALUE (repeatable)",
    )


#: the run config's keys that ``pbtnas run`` gives a flag of their own (``compare`` all but the
#: first); every other key is set with ``--set KEY=VALUE``
RUN_FLAGS = ("algorithm", "population", "steps", "seed", "workers", "backend", "mode", "ray_address", "cpus_per_member", "gpus_per_member", "storage")
#: those ``pbtnas resume`` gives, with the help they have there
RESUME_FLAGS = {
    "workers": "change the number of local workers",
    "backend": "change the backend",
    "ray_address": "Ray address: auto or HOST:PORT (move the run to a cluster)",
    "cpus_per_member": None,
    "gpus_per_member": None,
    "storage": None,
    "steps": "change the budget: more steps (a finished run trains on, delivers again), or fewer but more than done",
}


def add_config_flags(parser: argparse.ArgumentParser, keys, helps: dict | None = None) -> None:
    """A flag for each run config key in ``keys`` (``--population`` for ``population``), its help
    and what it allows taken from the key's declaration in :class:`RunConfig` (or ``helps``). The
    value is read as ``--set`` reads it (:func:`flag_values`), so a bad one is one error line."""
    specs = option_specs(RunConfig)
    for key in keys:
        spec = specs[key]
        text = (helps or {}).get(key) or spec.doc
        allowed = "" if spec.choices is not None else spec.allowed()
        metavar = "{" + ",".join(map(str, spec.choices)) + "}" if spec.choices is not None else key.upper()
        parser.add_argument(flag_name(key), dest=key, metavar=metavar, help=(f"{text} ({allowed})" if allowed else text).replace("%", "%%"))


def flag_values(args: argparse.Namespace, keys) -> dict:
    """The run config keys among ``keys`` given as flags, each value as its declaration makes it
    (``--population 8`` -> 8), or one ConfigError naming the flag."""
    specs = option_specs(RunConfig)
    values = {}
    for key in keys:
        value = getattr(args, key, None)
        if value is None or key not in specs:
            continue
        try:
            values[key] = coerce_value(RunConfig, key, parse_value(value) if isinstance(value, str) else value)
        except ConfigError as exc:  # named as the user wrote it: the flag, not the key
            raise ConfigError(f"{flag_name(key)}: {str(exc).partition(': ')[2]}") from None
    return values


def config_from_args(args: argparse.Namespace, **forced) -> RunConfig:
    """Preset or file, then ``--set`` overrides, then explicit flags (which must agree with a
    ``--set`` of the same key); validated."""
    flags = flag_values(args, RUN_FLAGS)
    refuse_disagreeing(args.overrides, {**flags, "device": getattr(args, "device", None)})
    data = load_config_source(args.source)
    apply_overrides(data, args.overrides)
    data.update(flags)
    if getattr(args, "device", None):
        data.setdefault("task", {})["device"] = args.device
    data.update(forced)
    return config_from_dict(data)


def default_run_dir(source: str, config: RunConfig) -> str:
    name = os.path.splitext(os.path.basename(source))[0]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return os.path.join("runs", f"{name}-{config.algorithm}-s{config.seed}-{stamp}")
