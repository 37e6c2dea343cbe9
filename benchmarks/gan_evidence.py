"""Seed-paired GAN comparisons at equal compute: PBT-NAS against random search and mutation, and
PBT-NAS against its ablations, on the ``gan-mnist-small`` preset (about 8 minutes per run on 2
idle cores).

    python benchmarks/gan_evidence.py                      # run (or continue) both tables
    python benchmarks/gan_evidence.py --collect-only       # only rewrite the CSVs / table from finished runs

Order: table ``gan-baselines`` (pbtnas, random, mutation) seed by seed, then table
``gan-ablation`` (pbtnas, sp-1-0, sp-0-1, no-mixing) seed by seed, so that every finished seed
adds a complete pair. Each run is one ``pbtnas compare PRESET --algorithms A --seed S --seeds 1`` call;
runs live in ``OUT/<table>/runs/<algorithm>-s<seed>`` and finished ones are reused, unfinished
ones resumed, so the script continues where it stopped when started again. The ablation table
shares the baseline table's PBT-NAS runs (same seeds and budget) through symlinks. The CPU
seconds of every run (all its processes) and its wall time go to ``OUT/cpu_seconds.jsonl``
(a run resumed after an interruption records only its second part).

After every (table, seed) it rewrites, from the runs finished so far:

* ``RESULTS/gan-baselines.csv`` and ``RESULTS/gan-ablation.csv``, columns
  ``table,algorithm,seed,metric,value`` (one row per run and metric; ``final_made_in_search``
  is 1.0 when the delivered network was made during the search, ``best_uid >= population``);
* ``RESULTS/runs/<algorithm>-s<seed>.json``, a copy of each finished run's ``summary.json``;
* ``RESULTS/gan-evidence.md``: mean ± std per algorithm and the one-sided Wilcoxon signed-rank
  test (``pbtnas.analysis.compare.paired_wilcoxon``) that PBT-NAS has the lower test-split FD-clf;
* ``RESULTS/grids/<algorithm>-s0.png``: 64 samples of each seed-0 run's final generator.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

TABLES = {
    "gan-baselines": ("pbtnas", "random", "mutation"),
    "gan-ablation": ("pbtnas", "sp-1-0", "sp-0-1", "no-mixing"),
}
#: per-run figures written to the CSVs (summary key or final_metrics key)
METRICS = ("fd_clf_test", "fd_clf_train", "clf_is", "best_fitness", "wall_time_s", "cpu_s", "final_made_in_search")
LABELS = {
    "pbtnas": "PBT-NAS, shrink-perturb (0.4, 0.1)",
    "random": "random search",
    "mutation": "mutation (SEARL-like)",
    "sp-1-0": "shrink-perturb (1, 0)",
    "sp-0-1": "shrink-perturb (0, 1)",
    "no-mixing": "no mixing",
}
ROOT = Path(__file__).resolve().parents[1]


def log(msg: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}", flush=True)


def table_dir(out: Path, table: str) -> Path:
    return out / table.removeprefix("gan-")


def run_dir(out: Path, table: str, algorithm: str, seed: int) -> Path:
    return table_dir(out, table) / "runs" / f"{algorithm}-s{seed}"


def summary_of(path: Path) -> dict | None:
    try:
        summary = json.loads((path / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    return summary if summary.get("finished") else None


def committed_summary(args, algorithm: str, seed: int) -> dict | None:
    """A finished run's summary as committed under RESULTS/runs/ (a fresh checkout has no runs/
    folder: its finished runs count from these copies and are not made again)."""
    try:
        summary = json.loads((args.results / "runs" / f"{algorithm}-s{seed}.json").read_text())
    except (OSError, ValueError):
        return None
    return summary if summary.get("finished") else None


def code_version() -> dict:
    """The commit the run was made from and how many tracked files differed from it at its end
    (the checkout is shared with people editing it; a run records what it may have used)."""

    def git(*cmd):
        try:
            return subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            return ""

    return {
        "commit": git("rev-parse", "HEAD").strip()[:12],
        "changed_files": len([ln for ln in git("status", "--porcelain", "--untracked-files=no").splitlines() if ln]),
    }


def run_table_seed(args, table: str, seed: int) -> None:
    tdir = table_dir(args.out, table)
    (tdir / "runs").mkdir(parents=True, exist_ok=True)
    if table != "gan-baselines":
        link = tdir / "runs" / f"pbtnas-s{seed}"
        if not link.exists() and not link.is_symlink():
            link.symlink_to(Path("..") / ".." / table_dir(args.out, "gan-baselines").name / "runs" / f"pbtnas-s{seed}")
        if summary_of(link) is None and committed_summary(args, "pbtnas", seed) is None:
            run_table_seed(args, "gan-baselines", seed)  # the shared PBT-NAS run, in its own table first
    for algo in TABLES[table]:
        if summary_of(run_dir(args.out, table, algo, seed)) is not None or committed_summary(args, algo, seed):
            continue
        cmd = [
            sys.executable,
            "-m",
            "pbtnas",
            "compare",
            args.preset,
            "--algorithms",
            algo,
            "--seed",
            str(seed),
            "--seeds",
            "1",
            "--workers",
            str(args.workers),
            "--out",
            str(tdir),
        ]
        for item in args.set:
            cmd += ["--set", item]
        run_recorded(cmd, args.out, table, algo, seed)


def run_recorded(cmd: list[str], out: Path, table: str, algorithm: str, seed: int, **run_options) -> None:
    """Run one comparison command and append its record (CPU seconds of all its processes, wall
    time, the code it ran from) to ``out/cpu_seconds.jsonl``."""
    log(f"{table} {algorithm} seed {seed}: {' '.join(cmd)}")
    before, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.time()
    # `python -m pbtnas` puts the current folder first on sys.path: from a worktree the run
    # would import whatever package the caller's folder holds. PYTHONSAFEPATH drops that entry
    # and PYTHONPATH names this script's checkout, so the record's commit is the code that ran.
    env = dict(run_options.pop("env", os.environ))
    env["PYTHONSAFEPATH"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    subprocess.run(cmd, check=True, env=env, **run_options)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    record = {
        "table": table,
        "algorithm": algorithm,
        "seed": seed,
        "cpu_s": round((after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), 1),
        **code_version(),
        "wall_s": round(time.time() - t0, 1),
        "loadavg_end": os.getloadavg()[0],
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    log(f"{table} {algorithm} seed {seed}: {json.dumps(record)}")
    with open(out / "cpu_seconds.jsonl", "a") as fh:
        fh.write(json.dumps(record) + "\n")


def collect(args) -> None:
    """Rewrite the CSVs, the summary copies, the grids and the markdown table from finished runs."""
    results = args.results
    (results / "runs").mkdir(parents=True, exist_ok=True)
    values: dict[str, dict[str, dict[int, dict]]] = {}
    cpu: dict[tuple, float] = {}
    records: dict[tuple, dict] = {}  # commit, changed files, CPU and wall seconds of each run made here
    try:
        for line in (args.out / "cpu_seconds.jsonl").read_text().splitlines():
            r = json.loads(line)
            cpu[r["table"], r["algorithm"], r["seed"]] = r["cpu_s"]
            records[r["table"], r["algorithm"], r["seed"]] = r
    except (OSError, ValueError):
        pass
    for table in TABLES:  # CPU seconds of runs made in an earlier checkout live only in the CSVs
        try:
            with open(results / f"{table}.csv") as fh:
                for row in csv.DictReader(fh):
                    if row["metric"] == "cpu_s":
                        owner = "gan-baselines" if row["algorithm"] == "pbtnas" else table
                        cpu.setdefault((owner, row["algorithm"], int(row["seed"])), float(row["value"]))
        except (OSError, ValueError, KeyError):
            pass
    for table, algorithms in TABLES.items():
        rows = []
        values[table] = {}
        for algo in algorithms:
            values[table][algo] = {}
            # every seed up to the last one asked for: extending the tables with --first-seed 6
            # keeps the seeds an earlier invocation made
            for seed in range(args.first_seed + args.seeds):
                # PBT-NAS runs are made (and found) in the baselines table, also before the
                # ablation table's symlinks exist.
                path = run_dir(args.out, "gan-baselines" if algo == "pbtnas" else table, algo, seed)
                summary = summary_of(path)
                local = summary is not None
                summary = summary or committed_summary(args, algo, seed)
                if summary is None:
                    continue
                figures = {**{k: summary.get(k) for k in ("best_fitness", "wall_time_s")}, **summary["final_metrics"]}
                owner = "gan-baselines" if algo == "pbtnas" else table  # the shared runs are made there
                if (owner, algo, seed) in cpu:
                    figures["cpu_s"] = cpu[owner, algo, seed]
                made = final_made_in_search(summary)
                if made is not None:
                    figures["final_made_in_search"] = float(made)
                values[table][algo][seed] = figures
                for metric in METRICS:
                    if figures.get(metric) is not None:
                        rows.append((table, algo, seed, metric, repr(float(figures[metric]))))
                copy = results / "runs" / f"{algo}-s{seed}.json"
                if local and not copy.exists():
                    if (owner, algo, seed) in records:  # which code made it, as benchmarks/evidence.py records
                        copy.write_text(json.dumps({**summary, "evidence": records[owner, algo, seed]}, indent=2) + "\n")
                    else:
                        shutil.copyfile(path / "summary.json", copy)
                if seed == 0 and args.grids and local:
                    grid = results / "grids" / f"{algo}-s0.png"
                    if not grid.exists():
                        # In a fresh process: this one may run for days while the package changes
                        # under it (a run's config.yaml can hold keys newer than this process's
                        # code), and a failed grid must not stop the experiment.
                        done = subprocess.run([sys.executable, __file__, "--write-grid", str(path), str(grid)])
                        if done.returncode:
                            log(f"could not write {grid} (exit {done.returncode}); the next collect tries again")
        # the CSV holds complete seeds only (every algorithm of the table finished it), so that
        # every row is paired and benchmarks/results_tables.py accepts it while a seed is under way
        complete = {seed for seed in values[table][algorithms[0]] if all(seed in values[table][a] for a in algorithms)}
        rows = [row for row in rows if row[2] in complete]
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(("table", "algorithm", "seed", "metric", "value"))
        writer.writerows(rows)
        (results / f"{table}.csv").write_text(buf.getvalue())
    (results / "gan-evidence.md").write_text(markdown(args, values))


def final_made_in_search(summary: dict) -> bool | None:
    """Whether the delivered network was made during the search (a child: uid >= population)
    rather than being one of the initial population; None when the summary does not say. The
    same rule as ``benchmarks/evidence.py``, so every table's column means the same."""
    uid, population = summary.get("best_uid"), summary.get("population")
    if isinstance(uid, int) and isinstance(population, int):
        return uid >= population
    return None


def write_grid(path: Path, out: Path) -> None:
    """64 samples of the run's final (delivered) generator, z drawn from seed 0."""
    import torch

    from pbtnas.config import config_from_dict
    from pbtnas.rundir.store import RunStore, load_member
    from pbtnas.tasks import build_task

    torch.set_num_threads(1)
    config = config_from_dict(RunStore(path).read_config())
    task = build_task(config.task)
    genome, state, _ = load_member(path / "final" / "member.pt")
    out.parent.mkdir(parents=True, exist_ok=True)
    task.sample_grid(genome, state, str(out), 0)  # type: ignore[attr-defined]  # a GAN task's own method


def markdown(args, values) -> str:
    import numpy as np

    from pbtnas.analysis.compare import paired_wilcoxon

    lines = [
        f"# GAN evidence ({args.preset}): tables from the runs finished so far",
        "",
        f"Written by `benchmarks/gan_evidence.py` at {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. "
        "FD-clf of 5,000 samples of the delivered generator against the test split (lower is better), mean ± sample std (ddof=1); "
        "p: one-sided Wilcoxon signed-rank test that PBT-NAS is lower, on the seeds both finished.",
        "",
    ]
    for table, algorithms in TABLES.items():
        seeds = sorted({s for a in algorithms for s in values[table][a]})
        lines += [
            f"## {table}",
            "",
            "| algorithm | FD-clf test (mean ± std) | runs | p (PBT-NAS lower) | PBT-NAS lower on | mean wall time (min) | mean CPU time (min) |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        ref = {s: v["fd_clf_test"] for s, v in values[table]["pbtnas"].items()}
        for algo in algorithms:
            vals = {s: v["fd_clf_test"] for s, v in values[table][algo].items()}
            walls = [v["wall_time_s"] for v in values[table][algo].values() if v.get("wall_time_s")]
            if not vals:
                lines.append(f"| {LABELS[algo]} | - | 0 | - | - | - | - |")
                continue
            arr = np.array(list(vals.values()))
            std = float(np.std(arr, ddof=1)) if len(arr) > 1 else 0.0
            if algo == "pbtnas":
                p_text, wins = "reference", "-"
            else:
                test = paired_wilcoxon(ref, vals, higher_is_better=False)
                pairs = sorted(set(ref) & set(vals))
                p = test["p_value"]
                if p is None:
                    p_text = "n/a"
                elif p != p:  # NaN: every pair tied
                    p_text = f"n/a (all {test['pairs']} pairs tied)"
                else:
                    p_text = f"{p:.3g} ({test['pairs']} pairs)"
                wins = f"{sum(ref[s] < vals[s] for s in pairs)} of {len(pairs)} seeds"
            cpus = [v["cpu_s"] for v in values[table][algo].values() if v.get("cpu_s")]
            wall = f"{np.mean(walls) / 60:.1f}" if walls else "-"
            cpu_text = f"{np.mean(cpus) / 60:.1f} ({len(cpus)} runs)" if cpus else "-"
            lines.append(f"| {LABELS[algo]} | {arr.mean():.1f} ± {std:.1f} | {len(arr)} | {p_text} | {wins} | {wall} | {cpu_text} |")
        lines += ["", "Per seed, FD-clf test:", "", "| seed | " + " | ".join(algorithms) + " |", "| --- |" + " --- |" * len(algorithms)]
        for s in seeds:
            cells = [f"{values[table][a][s]['fd_clf_test']:.1f}" if s in values[table][a] else "-" for a in algorithms]
            lines.append(f"| {s} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="gan-mnist-small")
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--tables", default="gan-baselines,gan-ablation")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "evidence")
    ap.add_argument("--results", type=Path, default=ROOT / "docs" / "results")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="passed on to pbtnas compare")
    ap.add_argument("--no-grids", dest="grids", action="store_false", help="do not write seed-0 sample grids")
    ap.add_argument("--collect-only", action="store_true", help="only rewrite the outputs from finished runs")
    ap.add_argument("--write-grid", nargs=2, metavar=("RUN_DIR", "PNG"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.write_grid:
        write_grid(Path(args.write_grid[0]), Path(args.write_grid[1]))
        return
    args.out = args.out.resolve()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    collect(args)
    if args.collect_only:
        return
    for table in args.tables.split(","):
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            run_table_seed(args, table, seed)
            collect(args)
    log("all runs finished")


if __name__ == "__main__":
    main()
