"""How the multi-objective evidence depends on the hypervolume's reference point.

    python benchmarks/mo_reference_sensitivity.py
    python benchmarks/mo_reference_sensitivity.py --reference fitness=0.9,params=100000

Reads the committed run summaries under ``docs/results/runs/mo-classification/`` (copies of each
run's ``summary.json``, written by ``benchmarks/mo_evidence.py``'s runs), recomputes every run's
final hypervolume (feasible front members, re-scored values) from each reference point, and prints
per baseline how many seeds PBT-NAS has the larger hypervolume on and the one-sided Wilcoxon p.
Without ``--reference`` it uses a few points from the union-of-fronts one (what ``pbtnas
compare`` uses) to ones that only count fronts above an accuracy floor.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pbtnas.analysis.compare import paired_wilcoxon
from pbtnas.analysis.front_compare import front_values
from pbtnas.search.objectives import hypervolume, parse_objectives

RUNS = Path(__file__).resolve().parents[1] / "docs" / "results" / "runs" / "mo-classification"
OBJECTIVES = parse_objectives(["fitness", "params:min"])
POINTS = ("fitness=0.7705,params=99390.8", "fitness=0.85,params=100000", "fitness=0.9,params=100000", "fitness=0.94,params=100000")


def parse_point(text: str) -> dict[str, float]:
    return {name: float(value) for name, value in (part.split("=", 1) for part in text.split(","))}


def final_fronts() -> dict[tuple[str, int], list[dict[str, float]]]:
    """(algorithm, seed) -> the final values of the run's feasible front members."""
    fronts = {}
    for path in sorted(RUNS.glob("*.json")):
        algorithm, seed = path.stem.rsplit("-s", 1)
        fronts[algorithm, int(seed)] = front_values(json.loads(path.read_text())) or []
    return fronts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", action="append", help="NAME=VALUE,NAME=VALUE (repeatable)")
    args = parser.parse_args()
    fronts = final_fronts()
    seeds = sorted({seed for algorithm, seed in fronts if algorithm == "pbtnas"})
    print("| reference point | " + " | ".join(f"PBT-NAS vs {b}: better on, p" for b in ("random", "nsga2")) + " |")
    print("| --- | --- | --- |")
    for text in args.reference or POINTS:
        point = parse_point(text)
        hv = {key: hypervolume(front, OBJECTIVES, point) for key, front in fronts.items()}
        cells = []
        for baseline in ("random", "nsga2"):
            ours = {s: hv["pbtnas", s] for s in seeds}
            theirs = {s: hv[baseline, s] for s in seeds}
            better = sum(ours[s] > theirs[s] for s in seeds)
            test = paired_wilcoxon(ours, theirs, higher_is_better=True)
            cells.append(f"{better} of {len(seeds)}, p = {test['p_value']:.3g}")
        print(f"| {text} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
