"""Budget and execution options shared by ``pbtnas run`` and ``pbtnas compare``."""

from __future__ import annotations

import argparse
import os
import time

from pbtnas.config import ALGORITHMS, BACKENDS, RunConfig, apply_overrides, config_from_dict, load_config_source
from pbtnas.search.schedules import MODES


def add_budget_options(parser: argparse.ArgumentParser, algorithm: bool = True) -> None:
    parser.add_argument(
        "source",
        metavar="PRESET|CONFIG.yaml|FILE.py:CLASS",
        help="a preset name (see 'pbtnas presets'), a YAML config file, or a task "
        "(file.py:Class, package.module:Class, a plugin name) run with the default options",
    )
    if algorithm:
        parser.add_argument("--algorithm", choices=sorted(ALGORITHMS), help="search algorithm or ablation")
    parser.add_argument("--population", type=int, help="population size N (>= 4)")
    parser.add_argument("--steps", type=int, help="number of PBT steps")
    parser.add_argument("--seed", type=int, help="master seed")
    parser.add_argument("--workers", type=int, help="local worker processes (0 = one per core)")
    parser.add_argument("--backend", choices=BACKENDS, help="where members train")
    parser.add_argument("--device", help="torch device for training, e.g. cpu or cuda (sets task.device)")
    parser.add_argument("--mode", choices=MODES, help="synchronous generations (paper) or asynchronous")
    parser.add_argument("--address", dest="ray_address", help="Ray address: auto or HOST:PORT (backend ray)")
    parser.add_argument("--cpus-per-member", type=float, help="Ray: CPUs per member (fractions allowed)")
    parser.add_argument("--gpus-per-member", type=float, help="Ray: GPUs per member (fractions allowed)")
    parser.add_argument("--storage", help="Ray: shared folder or fsspec URL for member states")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any config key; task options as task.KEY=VALUE (repeatable)",
    )


_DIRECT = ("algorithm", "population", "steps", "seed", "workers", "backend", "mode", "ray_address", "cpus_per_member", "gpus_per_member", "storage")


def config_from_args(args: argparse.Namespace, **forced) -> RunConfig:
    """Preset or file, then ``--set`` overrides, then explicit flags (which must agree with a
    ``--set`` of the same key); validated."""
    from pbtnas.cli.commands._agree import refuse_disagreeing

    refuse_disagreeing(args.overrides, {key: getattr(args, key, None) for key in (*_DIRECT, "device")})
    data = load_config_source(args.source)
    apply_overrides(data, args.overrides)
    for key in _DIRECT:
        value = getattr(args, key, None)
        if value is not None:
            data[key] = value
    if getattr(args, "device", None):
        data.setdefault("task", {})["device"] = args.device
    data.update(forced)
    return config_from_dict(data)


def default_run_dir(source: str, config: RunConfig) -> str:
    name = os.path.splitext(os.path.basename(source))[0]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return os.path.join("runs", f"{name}-{config.algorithm}-s{config.seed}-{stamp}")
