"""For every run of a ``pbtnas compare`` folder: is the delivered network a child of the search
or a member of the initial population, and how many children ever became the population's best?

Usage: python benchmarks/final_network_origin.py COMPARE_DIR [COMPARE_DIR ...]

Prints one line per run and a count per algorithm (used in docs/RESULTS.md).
"""

from __future__ import annotations

import math
import sys
from collections import defaultdict
from pathlib import Path

from pbtnas.analysis.report import load_history


def origin(run_dir: Path) -> tuple[str, int, int]:
    """(origin of the final network, children made, steps at which a child led the population)."""
    h = load_history(run_dir)
    uid = (h.summary or {}).get("best_uid")
    member = h.members.get(uid)
    kind = "?" if member is None else ("child" if member.is_child else "initial")
    child_led = 0
    for step in h.trained_steps:
        pop = h.population_at(step)
        leader = max(pop, key=lambda m: m.fitness[step] if math.isfinite(m.fitness[step]) else -math.inf)
        child_led += leader.is_child
    return kind, len(h.children), child_led


def main(folders: list[str]) -> None:
    for folder in folders:
        totals: dict[str, list] = defaultdict(lambda: [0, 0, 0])
        for run in sorted((Path(folder) / "runs").iterdir()):
            if not (run / "summary.json").is_file():
                continue
            kind, children, led = origin(run)
            algo = run.name.rsplit("-s", 1)[0]
            totals[algo][0] += kind == "child"
            totals[algo][1] += 1
            totals[algo][2] += led
            print(f"{folder}/{run.name}: final network is {kind}; {children} children; a child led at {led} step(s)")
        for algo, (child, runs, led) in totals.items():
            print(f"{folder} {algo}: final network is a child in {child}/{runs} runs; a child led the population at {led} step(s) in total")


if __name__ == "__main__":
    main(sys.argv[1:] or ["results/baselines"])
