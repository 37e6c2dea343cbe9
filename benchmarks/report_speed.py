"""How long looking at a big run takes (issue 21.11): ``pbtnas status`` and ``pbtnas report`` of a
256-member, 10-step ``simulated`` run (about 4,000 journal events), against the time a bare
``python -c "import torch, matplotlib.pyplot"`` takes on the same machine.

    python benchmarks/report_speed.py [--run RUN_DIR] [--repeat 3]

The run is made once (in-process, no sleeps: about a minute on two cores) and reused when
``--run`` names an existing one. Every command runs in a fresh interpreter, like a user's
``pbtnas report``; each figure is the median of ``--repeat`` runs. Timings on a shared machine
are noisy: compare figures taken together.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

POPULATION = 256
STEPS = 10


def make_run(run_dir: Path) -> None:
    """A finished simulated run of POPULATION members and STEPS steps (no sleeps, one process)."""
    argv = [
        *("run", "simulated", "--population", str(POPULATION), "--steps", str(STEPS)),
        *("--seed", "0", "--backend", "inprocess", "--quiet", "--out", str(run_dir)),
        *("--set", "task.step_seconds=0", "--set", "task.batches_per_step=1", "--set", "loggers=none"),
    ]
    subprocess.run([sys.executable, "-m", "pbtnas.cli", *argv], check=True, stdout=subprocess.DEVNULL)


def seconds(argv: list[str], repeat: int) -> float:
    """Median wall time of ``argv`` in a fresh process."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="run directory to use (made there when absent)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    run_dir = Path(args.run) if args.run else Path(tempfile.mkdtemp(prefix="report-speed-")) / "run"
    if not (run_dir / "summary.json").is_file():
        start = time.perf_counter()
        make_run(run_dir)
        print(f"made {run_dir} in {time.perf_counter() - start:.0f} s")
    events = sum(1 for _ in open(run_dir / "journal.jsonl", "rb"))
    python = sys.executable
    baseline = seconds([python, "-c", "import torch, matplotlib.pyplot"], args.repeat)
    status = seconds([python, "-m", "pbtnas.cli", "status", str(run_dir)], args.repeat)
    report = seconds([python, "-m", "pbtnas.cli", "report", str(run_dir), "--out", str(run_dir.parent / "report")], args.repeat)
    figures = {
        "population": POPULATION,
        "steps": STEPS,
        "journal_events": events,
        "import_torch_matplotlib_s": round(baseline, 2),
        "status_s": round(status, 2),
        "report_s": round(report, 2),
        "status_over_baseline": round(status / baseline, 2),
        "report_over_baseline": round(report / baseline, 2),
    }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
