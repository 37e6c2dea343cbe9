"""Print every member's fitness at every step of a run, from its journal, one line per uid.

Used to read why a population-based run ended where it did (docs/RESULTS.md, GAN seed 2):
which members were replaced when, what a child started from, which lineage the best came from.

    python benchmarks/member_trajectories.py runs/evidence/baselines/runs/pbtnas-s2 [...]
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

from pbtnas.rundir.records import BestUpdated, ChildCreated, MemberTrained
from pbtnas.rundir.store import RunStore


def trajectories(run_dir: Path) -> str:
    records = RunStore(run_dir).records()
    fitness: dict[int, dict[int, float]] = defaultdict(dict)
    origin: dict[int, str] = {}
    best: list[tuple[int, int]] = []
    for record in records:
        if isinstance(record, MemberTrained):
            fitness[record.uid][record.step] = record.fitness
        elif isinstance(record, ChildCreated):
            donor = f" + {record.donor}" if record.donor is not None else ""
            origin[record.uid] = f"child of {record.primary}{donor}, replaced {record.replaced_uid} after step {record.step}"
        elif isinstance(record, BestUpdated):
            best.append((record.step, record.uid))
    lines = [f"{run_dir}:"]
    for uid, by_step in sorted(fitness.items()):
        trace = " ".join(f"{step}:{value:.4g}" for step, value in sorted(by_step.items()))
        lines.append(f"  uid {uid:>3}  {trace}" + (f"   ({origin[uid]})" if uid in origin else ""))
    lines.append(f"  best-ever updates (step, uid): {best}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dirs", nargs="+", type=Path)
    for run_dir in parser.parse_args().run_dirs:
        print(trajectories(run_dir))


if __name__ == "__main__":
    main()
