"""Start-up latency: how long ``pbtnas run`` takes until the first member trains.

Each case is a real ``python -m pbtnas run`` in a child process (one step, four members). From its
journal (docs/journal.md) come the ``run_started`` time and, per ``member_trained`` event, when the
step began in the worker (``time - seconds``) and when its result was journaled. Printed, the
median over ``--repeats`` runs of each case, in seconds:

* ``started->step``: from ``run_started`` to the first member's step start;
* ``started->result``: from ``run_started`` to the first member's result;
* ``process->step`` / ``process->result``: the same from the moment the process was started (the
  user's wait: imports, task build, the task check, run directory and workers included);
* ``check_s``: what the start's task check of a user task cost (``skipped`` when it was remembered).

Cases: the built-in ``simulated`` preset in-process and on the local backend (two workers), and a
user task (``examples/sequence_classification.py:Waveforms``, local backend) run first with an empty
check memo and then again with the memo of that first run::

    python benchmarks/startup.py [--repeats 3] [--cases simulated-inprocess ...]

A figure for the record, never an assertion: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
USER_TASK = "examples/sequence_classification.py:Waveforms"
SMALL = ["--population", "4", "--steps", "1"]  # not --quiet: it hides the check's line
CASES = {
    "simulated-inprocess": ["simulated", "--backend", "inprocess", *SMALL],
    "simulated-local": ["simulated", "--backend", "local", "--workers", "2", *SMALL],
    "user-first": [USER_TASK, "--backend", "local", "--workers", "2", *SMALL],
    "user-repeated": [USER_TASK, "--backend", "local", "--workers", "2", *SMALL],
}
CHECK_LINE = re.compile(r"task check passed in ([0-9.]+) s")


def first_member_latency(journal: Path) -> dict:
    """Seconds from ``run_started`` to the first member's step start and to its first result
    (absolute times too, for the caller's own origin)."""
    events = [json.loads(line) for line in journal.read_text().splitlines() if line.strip()]
    started = next(e["time"] for e in events if e["event"] == "run_started")
    trained = [e for e in events if e["event"] == "member_trained"]
    if not trained:
        raise ValueError(f"{journal}: no member_trained event")
    step = min(e["time"] - e["seconds"] for e in trained)
    result = min(e["time"] for e in trained)
    return {"run_started": started, "step": step, "result": result}


def run_case(args: list[str], out: Path, cache: Path) -> dict:
    """One ``pbtnas run`` in a child process; its latencies and the check's cost."""
    env = {**os.environ, "PBTNAS_CACHE": str(cache)}
    began = time.time()
    done = subprocess.run([sys.executable, "-m", "pbtnas", "run", *args, "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"pbtnas run {' '.join(args)} failed:\n{done.stderr}")
    t = first_member_latency(out / "journal.jsonl")
    match = CHECK_LINE.search(done.stderr)
    check = float(match.group(1)) if match else ("skipped" if "task check skipped" in done.stderr else None)
    return {
        "started->step": t["step"] - t["run_started"],
        "started->result": t["result"] - t["run_started"],
        "process->step": t["step"] - began,
        "process->result": t["result"] - began,
        "check_s": check,
    }


def median_row(name: str, rows: list[dict]) -> dict:
    """The median of every timing over the repeats (the check's cost as seen)."""
    row: dict = {"case": name, "repeats": len(rows)}
    for key in ("started->step", "started->result", "process->step", "process->result"):
        row[key] = round(statistics.median(r[key] for r in rows), 2)
    checks = [r["check_s"] for r in rows]
    numbers = [c for c in checks if isinstance(c, float)]
    row["check_s"] = round(statistics.median(numbers), 2) if numbers else (checks[0] if checks else None)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pbtnas-startup-") as tmp:
        results: dict[str, list[dict]] = {name: [] for name in args.cases}
        for i in range(args.repeats):
            cache = Path(tmp) / f"cache{i}"  # empty per repeat: 'user-first' checks, 'user-repeated' recalls
            for name in args.cases:
                if name == "user-repeated" and "user-first" not in args.cases:
                    run_case(CASES["user-first"], Path(tmp) / f"warm{i}", cache)  # make the memo
                results[name].append(run_case(CASES[name], Path(tmp) / f"{name}{i}", cache))
        for name in args.cases:
            print(json.dumps(median_row(name, results[name])), flush=True)


if __name__ == "__main__":
    main()
