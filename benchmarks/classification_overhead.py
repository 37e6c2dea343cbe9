"""Figures for the engine on the classification preset (N = 8, default budget):

* wall time of PBT-NAS over random search with the same budget (overhead of exploitation),
* speed-up of 2 local workers over 1,
* peak memory (RSS) per worker process.

Usage: python benchmarks/classification_overhead.py [--seed 0] [--steps 16] [--out runs/bench]
Prints one figure per line; nothing here is asserted.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from pbtnas.config import config_from_dict, load_config_source
from pbtnas.engine.runner import Runner
from pbtnas.rundir.store import RunStore


def timed_run(out: Path, **overrides) -> tuple[float, dict, float]:
    data = load_config_source("classification")
    data.update(overrides)
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    summary = Runner(config_from_dict(data), out, progress=False).start().run()
    wall = time.perf_counter() - start
    rss = max(e.get("peak_rss_mb", 0.0) for e in RunStore(out).iter_events("member_trained"))
    return wall, summary, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--out", default="runs/bench")
    args = parser.parse_args()
    base = Path(args.out)
    common = {"seed": args.seed, "population": 8, "backend": "local"}
    if args.steps:
        common["steps"] = args.steps
    t_random, s_random, _ = timed_run(base / "random-w2", algorithm="random", workers=2, **common)
    t_pbt, s_pbt, rss = timed_run(base / "pbtnas-w2", algorithm="pbtnas", workers=2, **common)
    t_pbt1, _, _ = timed_run(base / "pbtnas-w1", algorithm="pbtnas", workers=1, **common)
    print(f"random search, 2 workers:   {t_random:7.1f} s  test accuracy {s_random['final_metric']:.4f}")
    print(f"PBT-NAS, 2 workers:         {t_pbt:7.1f} s  test accuracy {s_pbt['final_metric']:.4f}")
    print(f"PBT-NAS, 1 worker:          {t_pbt1:7.1f} s")
    print(f"wall time PBT-NAS / random: {t_pbt / t_random:7.3f}  (aim <= 1.05)")
    print(f"speed-up 2 workers over 1:  {t_pbt1 / t_pbt:7.3f}  (aim >= 1.8)")
    print(f"peak RSS per worker:        {rss:7.1f} MB")


if __name__ == "__main__":
    main()
