"""Tabulate RL runs: per step the best and mean fitness (mean eval return) of the population,
and the final network's held-apart return. Reads run directories only; trains nothing::

    python benchmarks/rl_returns.py RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path


def summarise(run_dir: Path) -> dict:
    by_step: dict[int, list[float]] = defaultdict(list)
    seconds, frames = [], 0
    with open(run_dir / "journal.jsonl") as fh:
        for line in fh:
            event = json.loads(line)
            if event.get("event") == "member_trained":
                by_step[event["step"]].append(event["fitness"])
                seconds.append(event.get("seconds", 0.0))
                frames = max(frames, event.get("metrics", {}).get("frames", 0))
    summary = {}
    if (run_dir / "summary.json").is_file():
        summary = json.loads((run_dir / "summary.json").read_text())
    return {
        "run": str(run_dir),
        "algorithm": summary.get("algorithm"),
        "best_per_step": [round(max(v), 1) for _, v in sorted(by_step.items())],
        "mean_per_step": [round(sum(v) / len(v), 1) for _, v in sorted(by_step.items())],
        "frames_per_member": frames,
        "member_step_seconds_mean": round(sum(seconds) / max(1, len(seconds)), 1),
        "final_return": summary.get("final_metric"),
        "final_metrics": summary.get("final_metrics"),
        "wall_time_s": summary.get("wall_time_s"),
    }


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(json.dumps(summarise(Path(arg))))
