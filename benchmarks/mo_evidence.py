"""Multi-objective evidence (issue 23): classification with ``objectives: [fitness, params:min]``,
PBT-NAS against random search and NSGA-II at equal member-step budget, seed-paired.

    python benchmarks/mo_evidence.py                       # run or continue seeds 0..5, then collect
    python benchmarks/mo_evidence.py --collect-only        # only rewrite the CSVs and the plot
    python benchmarks/mo_evidence.py --seeds 1 --set steps=4 --set population=4 \
        --out /tmp/mo-tiny --results /tmp/mo-tiny/results  # a tiny trial of the script itself

Run it from a checkout of a fixed commit: every run is a ``python -m pbtnas compare
classification --algorithms A --seed S --seeds 1`` subprocess with ``PYTHONSAFEPATH=1`` and this
checkout on ``PYTHONPATH`` (so the code that ran is this checkout's), its CPU seconds, wall time
and commit appended to ``OUT/cpu_seconds.jsonl`` (benchmarks/gan_evidence.py's ``run_recorded``).
Runs are made seed by seed (every algorithm of seed 0, then of seed 1, ...); finished runs are
reused and an unfinished one resumes, so the script continues where it stopped.

Outputs, from complete seeds only (every algorithm finished):

* ``RESULTS/mo-classification.csv``: ``algorithm,seed,metric,value`` with each run's final
  hypervolume (from one reference point over all runs' fronts: pbtnas.analysis.front_compare),
  front size, final test accuracy, member steps and CPU seconds;
* ``RESULTS/mo-classification-tests.csv``: per baseline, the one-sided Wilcoxon signed-rank test
  that PBT-NAS's hypervolume is higher (pairs, statistic, p) and the reference point;
* ``RESULTS/mo-classification-fronts.png``: every run's final front (test accuracy against
  parameters), one colour per algorithm.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

# `python benchmarks/mo_evidence.py` puts benchmarks/ first on sys.path, but not with
# PYTHONSAFEPATH=1 (how the other benchmark scripts are started): put it there, once, so that the
# script starts either way
HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from evidence import finished_summary, log  # noqa: E402  (the classification tables' helpers)
from gan_evidence import run_recorded  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TABLE = "mo-classification"
ALGORITHMS = ("pbtnas", "random", "nsga2")
OBJECTIVES = '[fitness, "params:min"]'


def run_dir(out: Path, algorithm: str, seed: int) -> Path:
    return out / TABLE / "runs" / f"{algorithm}-s{seed}"


def run_one(args, algorithm: str, seed: int) -> None:
    if finished_summary(run_dir(args.out, algorithm, seed) / "summary.json"):
        return
    cmd = [sys.executable, "-m", "pbtnas", "compare", "classification", "--algorithms", algorithm, "--seed", str(seed), "--seeds", "1"]
    cmd += ["--workers", str(args.workers), "--quiet", "--out", str(args.out / TABLE), "--set", f"objectives={OBJECTIVES}"]
    for item in args.sets:
        cmd += ["--set", item]
    run_recorded(cmd, args.out, TABLE, algorithm, seed, cwd=ROOT, stdout=subprocess.DEVNULL)


def collect(args) -> None:
    """Rewrite the CSVs and the plot from the complete seeds' finished runs."""
    from pbtnas.analysis.compare import paired_wilcoxon
    from pbtnas.analysis.front_compare import front_values, shared_hypervolumes
    from pbtnas.search.objectives import parse_objectives

    cpu: dict[tuple, float] = {}
    try:
        for line in (args.out / "cpu_seconds.jsonl").read_text().splitlines():
            r = json.loads(line)
            if r.get("table") == TABLE:
                cpu[r["algorithm"], int(r["seed"])] = r["cpu_s"]
    except (OSError, ValueError):
        pass
    summaries: dict[tuple[str, int], dict] = {}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        found = {a: finished_summary(run_dir(args.out, a, seed) / "summary.json") for a in ALGORITHMS}
        if all(s is not None for s in found.values()):  # complete seeds only: every row is paired
            summaries.update({(a, seed): s for a, s in found.items() if s is not None})
    if not summaries:
        log("no complete seed yet: nothing to collect")
        return
    objectives = parse_objectives(["fitness", "params:min"])
    fronts = {key: front_values(s) or [] for key, s in summaries.items()}
    reference, hv = shared_hypervolumes(fronts, objectives)
    rows = []
    for (algorithm, seed), summary in sorted(summaries.items(), key=lambda kv: (ALGORITHMS.index(kv[0][0]), kv[0][1])):
        figures = {
            "hypervolume": hv.get((algorithm, seed)),
            "front_size": len(fronts[algorithm, seed]),
            "test_accuracy": (summary.get("final_metrics") or {}).get("test_accuracy"),
            "member_steps": summary.get("member_steps") or summary.get("population", 0) * summary.get("steps_done", 0),
            "cpu_s": cpu.get((algorithm, seed)),
        }
        rows += [(algorithm, seed, k, repr(float(v))) for k, v in figures.items() if isinstance(v, (int, float))]
    args.results.mkdir(parents=True, exist_ok=True)
    _write_csv(args.results / f"{TABLE}.csv", ("algorithm", "seed", "metric", "value"), rows)
    ours = {seed: v for (a, seed), v in hv.items() if a == "pbtnas"}
    tests = []
    for baseline in ALGORITHMS[1:]:
        test = paired_wilcoxon(ours, {seed: v for (a, seed), v in hv.items() if a == baseline}, True)
        tests.append((baseline, test["pairs"], test["statistic"], test["p_value"], json.dumps(reference)))
        log(f"hypervolume, PBT-NAS better than {baseline}: p = {test['p_value']} ({test['pairs']} pairs)")
    _write_csv(args.results / f"{TABLE}-tests.csv", ("baseline", "pairs", "statistic", "p_value", "reference_point"), tests)
    plot(args.results / f"{TABLE}-fronts.png", summaries, reference)


def _write_csv(path: Path, header: tuple, rows: list) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buf.getvalue())


def plot(path: Path, summaries: dict, reference: dict) -> None:
    """Every run's final front: test accuracy (higher is better) against parameters (lower is better)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from pbtnas.analysis.front import read_front, values_of

    colours = dict(zip(ALGORITHMS, ("crimson", "tab:blue", "tab:green")))
    fig, ax = plt.subplots(figsize=(7.5, 5))
    labelled = set()
    for (algorithm, _seed), summary in sorted(summaries.items()):
        front = read_front(summary)
        points = sorted(
            (v["params"], v["fitness"]) for v in (values_of(m) for m in (front.members if front else [])) if "params" in v and "fitness" in v
        )
        if not points:
            continue
        label = None if algorithm in labelled else algorithm
        labelled.add(algorithm)
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", ms=4, lw=1, alpha=0.7, color=colours[algorithm], label=label)
    ax.set_xlabel("params (trainable parameters, lower is better)")
    ax.set_ylabel("test accuracy (final, higher is better)")
    ax.set_title(
        f"Final Pareto fronts, one line per run; hypervolume reference: {', '.join(f'{k}={v:.4g}' for k, v in reference.items())}", fontsize=8
    )
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE", help="config overrides every run shares")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "mo-evidence")
    ap.add_argument("--results", type=Path, default=ROOT / "docs" / "results")
    ap.add_argument("--collect-only", action="store_true", help="only rewrite the outputs from finished runs")
    args = ap.parse_args()
    args.out, args.results = args.out.resolve(), args.results.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.path.insert(0, str(ROOT))  # collect() reads the runs with this checkout's pbtnas
    collect(args)
    if args.collect_only:
        return
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for algorithm in ALGORITHMS:
            run_one(args, algorithm, seed)
        collect(args)


if __name__ == "__main__":
    main()
