"""Seconds that ``check_task`` adds when a run starts (``train=False``, as the runner calls it),
per built-in preset, after the task's own ``prepare()`` (data, cached classifiers) has run::

    python benchmarks/check_task_time.py [PRESET ...]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from pbtnas.config import load_config_source
from pbtnas.errors import PbtnasError
from pbtnas.tasks import build_task
from pbtnas.tasks.check import check_task

DEFAULT = ["classification", "classification-digits", "gan-mnist", "gan-hard-stacked-mnist", "rl-cheetah", "simulated"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("presets", nargs="*", default=DEFAULT)
    parser.add_argument(
        "--with-evaluations", action="store_true", help="also time the check with two evaluations, as a user's task gets (slow for GAN/RL)"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    for preset in args.presets:
        task = build_task(load_config_source(preset)["task"])
        try:
            started = time.perf_counter()
            task.prepare()
            prepared = time.perf_counter() - started
            report = check_task(task, train=False, evaluate=False)  # as a run of a built-in preset does
            full = check_task(task, train=False) if args.with_evaluations else None  # as a user's task
        except PbtnasError as exc:
            print(json.dumps({"preset": preset, "skipped": str(exc)}))
            continue
        print(
            json.dumps(
                {
                    "preset": preset,
                    "prepare_s": round(prepared, 2),
                    "check_task_s": round(report.seconds, 2),
                    **({"with_evaluations_s": round(full.seconds, 2)} if full else {}),
                    "architectures": report.architectures,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
