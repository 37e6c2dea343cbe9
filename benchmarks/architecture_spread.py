"""Does the architecture matter on a task? The spread of fitness among the members of random
search runs, which train N random architectures side by side with the same budget and never
replace one: whatever separates them at the end is the architecture (and the training seed).

    python benchmarks/architecture_spread.py runs/evidence/sequence/runs/random-s*

Prints, per run, the members' fitness after the last step (lowest, median, highest) with the
genomes of the lowest and the highest, then the mean range over the runs.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def last_fitness(run_dir: Path) -> tuple[dict[int, float], dict[int, dict]]:
    """Fitness of every member at its last trained step, and every member's genome."""
    fitness: dict[int, tuple[int, float]] = {}
    genomes: dict[int, dict] = {}
    with open(run_dir / "journal.jsonl", encoding="utf-8") as fh:
        for line in fh:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == "member_created":
                genomes[event["uid"]] = event.get("genome", {})
            elif event.get("event") == "member_trained":
                step, old = event["step"], fitness.get(event["uid"])
                if old is None or step >= old[0]:
                    fitness[event["uid"]] = (step, float(event["fitness"]))
    return {uid: value for uid, (_, value) in fitness.items()}, genomes


def main(folders: list[str]) -> int:
    if not folders:
        print(__doc__.strip().splitlines()[3].strip(), file=sys.stderr)
        return 2
    ranges = []
    for folder in folders:
        fitness, genomes = last_fitness(Path(folder))
        if not fitness:
            print(f"{folder}: no trained members")
            continue
        low, high = min(fitness, key=fitness.__getitem__), max(fitness, key=fitness.__getitem__)
        ranges.append(fitness[high] - fitness[low])
        print(
            f"{folder}: {len(fitness)} members, last fitness {fitness[low]:.4f} / {statistics.median(fitness.values()):.4f} / "
            f"{fitness[high]:.4f} (lowest / median / highest); lowest {genomes.get(low)}, highest {genomes.get(high)}"
        )
    if ranges:
        print(f"mean range (highest - lowest) over {len(ranges)} runs: {statistics.mean(ranges):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
