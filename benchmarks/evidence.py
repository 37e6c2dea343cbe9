"""Seed-paired comparisons at equal budget beyond the GAN tables: classification at the setting
that works, and a task outside images.

    python benchmarks/evidence.py --tables classification-paired,sequence   # run or continue
    python benchmarks/evidence.py --collect-only                             # only rewrite the CSVs

Every table is a list of algorithms run on one task with one budget; runs are made seed by seed
(every algorithm of seed 0, then of seed 1, ...) so that whatever has finished forms complete
pairs. Each run is one ``pbtnas compare TASK --algorithms A --seed S --seeds 1`` call in
``OUT/<table>``; finished runs are reused and an unfinished one resumes, so the script continues
where it stopped. For every finished run it records, in ``OUT/cpu_seconds.jsonl``, the CPU seconds
of all its processes, its wall time and the commit it ran from (with the number of changed tracked
files), and it writes:

* ``RESULTS/<table>.csv`` with columns ``table,algorithm,seed,metric,value``, complete seeds only
  (a seed appears once every algorithm of the table has finished it);
* ``RESULTS/runs/<table>/<algorithm>-s<seed>.json``, a copy of the run's ``summary.json`` with the
  run's record (commit, CPU seconds) under ``"evidence"``.

``benchmarks/results_tables.py`` builds the tables of docs/RESULTS.md from those files.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

# `python benchmarks/evidence.py` puts benchmarks/ first on sys.path, but not with PYTHONSAFEPATH=1:
# put it there, so that the script starts either way
HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

# the same record of each run (CPU seconds, the code it came from) as the GAN tables' runs
from gan_evidence import run_recorded  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Table:
    """One seed-paired comparison: a task, its algorithms and the options every run shares."""

    task: str
    algorithms: tuple[str, ...]
    options: tuple[str, ...] = ()
    sets: tuple[str, ...] = field(default=())
    seeds: int = 8


TABLES = {
    # The classification preset at its own budget (N = 8, 16 steps of 40 batches) with the
    # setting that removed the selection over-fitting in docs/RESULTS.md: 10 % of the training
    # data held apart to choose the delivered network among the top 3.
    "classification-paired": Table(
        task="classification",
        algorithms=("pbtnas", "random", "mutation", "bohb"),
        sets=("task.selection_fraction=0.1", "final_selection=top-k-reevaluated"),
    ),
    # A 1-D CNN + GRU/LSTM on generated waveforms (examples/sequence_classification.py), the
    # example's own budget: 8 members, 20 steps of 15 batches.
    "sequence": Table(
        task="examples/sequence_classification.py:Waveforms",
        algorithms=("pbtnas", "random", "bohb"),
        options=("--population", "8", "--steps", "20"),
    ),
}
#: figures copied from each run's summary.json into the CSV (besides the final metrics)
SUMMARY_FIGURES = ("best_fitness", "wall_time_s", "member_steps")


def log(msg: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}", flush=True)


def run_dir(out: Path, table: str, algorithm: str, seed: int) -> Path:
    return out / table / "runs" / f"{algorithm}-s{seed}"


def finished_summary(path: Path) -> dict | None:
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) and summary.get("finished") else None


def run_one(args, name: str, table: Table, algorithm: str, seed: int) -> None:
    path = run_dir(args.out, name, algorithm, seed)
    if finished_summary(path / "summary.json") or finished_summary(args.results / "runs" / name / f"{algorithm}-s{seed}.json"):
        return
    cmd = [sys.executable, "-m", "pbtnas", "compare", table.task, "--algorithms", algorithm, "--seed", str(seed), "--seeds", "1"]
    cmd += [*table.options, "--workers", str(args.workers), "--quiet", "--out", str(args.out / name)]
    for item in table.sets:
        cmd += ["--set", item]
    run_recorded(cmd, args.out, name, algorithm, seed, cwd=ROOT, stdout=subprocess.DEVNULL)


def records(out: Path) -> dict[tuple[str, str, int], dict]:
    found: dict[tuple[str, str, int], dict] = {}
    try:
        lines = (out / "cpu_seconds.jsonl").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        try:
            r = json.loads(line)
            found[r["table"], r["algorithm"], int(r["seed"])] = r
        except (ValueError, KeyError, TypeError):
            continue
    return found


def collect(args, name: str, table: Table) -> None:
    """Copy every finished run's summary (with its record) and rewrite the table's CSV."""
    copies = args.results / "runs" / name
    copies.mkdir(parents=True, exist_ok=True)
    made = records(args.out)
    rows = []
    for seed in range(args.first_seed + args.seeds):
        summaries = {}
        for algorithm in table.algorithms:
            copy = copies / f"{algorithm}-s{seed}.json"
            summary = finished_summary(run_dir(args.out, name, algorithm, seed) / "summary.json")
            if summary is not None:
                # the record (commit, CPU seconds) is written when the run's driver returns; a
                # run finished without one (its driver was stopped) is copied and completed later
                if (name, algorithm, seed) in made:
                    summary["evidence"] = made[name, algorithm, seed]
                summary["task"] = repo_relative(summary.get("task"))
                copy.write_text(json.dumps(summary, indent=2) + "\n")
            summaries[algorithm] = finished_summary(copy)
        if any(summary is None for summary in summaries.values()):
            continue  # the CSV holds complete seeds only: every row of it is paired
        for algorithm, summary in summaries.items():
            assert summary is not None
            figures = {k: summary.get(k) for k in SUMMARY_FIGURES}
            figures.update(summary.get("final_metrics") or {})
            evidence = summary.get("evidence") or {}
            figures["cpu_s"] = evidence.get("cpu_s")
            figures["final_made_in_search"] = final_made_in_search(summary)
            for metric, value in figures.items():
                if isinstance(value, bool):
                    value = float(value)
                if isinstance(value, (int, float)):
                    rows.append((name, algorithm, seed, metric, repr(float(value))))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(("table", "algorithm", "seed", "metric", "value"))
    writer.writerows(rows)
    (args.results / f"{name}.csv").write_text(buf.getvalue())


def repo_relative(task: object) -> object:
    """A task file named by an absolute path (the checkout the run was made in) as a path inside
    the repository, so that committed summaries name no machine's folders."""
    if isinstance(task, str) and os.path.isabs(task) and "/examples/" in task:
        return "examples/" + task.split("/examples/", 1)[1]
    return task


def final_made_in_search(summary: dict) -> bool | None:
    """Whether the delivered network was made during the search rather than being one of the
    initial population (uids 0..N-1): for PBT-NAS and mutation a child, for BOHB a trial TPE
    proposed after the initial ones. None when the summary does not say."""
    uid, population = summary.get("best_uid"), summary.get("population")
    if isinstance(uid, int) and isinstance(population, int):
        return uid >= population
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", default=",".join(TABLES))
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "evidence")
    ap.add_argument("--results", type=Path, default=ROOT / "docs" / "results")
    ap.add_argument("--collect-only", action="store_true", help="only rewrite the outputs from finished runs")
    args = ap.parse_args()
    args.out = args.out.resolve()
    args.results = args.results.resolve()
    names = [n for n in args.tables.split(",") if n]
    unknown = [n for n in names if n not in TABLES]
    if unknown:
        sys.exit(f"error: unknown table {unknown[0]!r}; known: {', '.join(TABLES)}")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    for name in names:
        collect(args, name, TABLES[name])
    if args.collect_only:
        return
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for name in names:
            for algorithm in TABLES[name].algorithms:
                run_one(args, name, TABLES[name], algorithm, seed)
                collect(args, name, TABLES[name])
    log("all runs finished")


if __name__ == "__main__":
    main()
