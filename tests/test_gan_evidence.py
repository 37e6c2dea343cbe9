"""benchmarks/gan_evidence.py: the CSVs, summary copies and table written from finished runs
(fake summaries here; the script's real runs are hours long)."""

import csv
import importlib.util
import json
import os
from argparse import Namespace
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def evidence():
    spec = importlib.util.spec_from_file_location("gan_evidence", ROOT / "benchmarks" / "gan_evidence.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_run(path: Path, fd: float, finished: bool = True):
    path.mkdir(parents=True)
    summary = {
        "finished": finished,
        "best_fitness": -fd + 1,
        "wall_time_s": 480.0,
        "final_metric": fd,
        "final_metrics": {"samples": 5000, "fd_clf_test": fd, "fd_clf_train": fd - 1, "clf_is": 2.0},
    }
    (path / "summary.json").write_text(json.dumps(summary))


def test_collect_writes_long_csvs_copies_and_paired_tests(evidence, tmp_path):
    out, results = tmp_path / "runs", tmp_path / "results"
    for seed in range(6):
        fake_run(out / "baselines" / "runs" / f"pbtnas-s{seed}", 40.0 + seed)
        fake_run(out / "baselines" / "runs" / f"random-s{seed}", 50.0 + seed)
        if seed < 3:
            fake_run(out / "baselines" / "runs" / f"mutation-s{seed}", 30.0 + seed)
    fake_run(out / "baselines" / "runs" / "mutation-s3", 99.0, finished=False)  # still running
    (out / "ablation" / "runs").mkdir(parents=True)
    os.symlink(Path("..") / ".." / "baselines" / "runs" / "pbtnas-s0", out / "ablation" / "runs" / "pbtnas-s0")
    fake_run(out / "ablation" / "runs" / "no-mixing-s0", 45.0)
    (out / "cpu_seconds.jsonl").write_text(json.dumps({"table": "gan-baselines", "algorithm": "pbtnas", "seed": 0, "cpu_s": 900.0}) + "\n")
    args = Namespace(out=out, results=results, seeds=6, first_seed=0, grids=False, preset="gan-mnist-small")
    evidence.collect(args)

    rows = list(csv.DictReader(open(results / "gan-baselines.csv")))
    assert list(rows[0]) == ["table", "algorithm", "seed", "metric", "value"]
    fd = {(r["algorithm"], int(r["seed"])): float(r["value"]) for r in rows if r["metric"] == "fd_clf_test"}
    # the CSVs hold complete seeds only: mutation finished seeds 0-2, so seeds 3-5 wait for it
    assert fd[("pbtnas", 2)] == 42.0 and ("pbtnas", 5) not in fd and ("mutation", 3) not in fd and len(fd) == 3 + 3 + 3
    assert {r["value"] for r in rows if r["metric"] == "cpu_s"} == {"900.0"}
    ablation = list(csv.DictReader(open(results / "gan-ablation.csv")))
    assert ablation == []  # no seed has all four settings yet
    assert json.loads((results / "runs" / "random-s4.json").read_text())["final_metric"] == 54.0
    table = (results / "gan-evidence.md").read_text()
    # PBT-NAS is lower than random on all 6 seeds: the smallest one-sided p, 1/64.
    assert "| random search | 52.5 ± 1.9 | 6 | 0.0156 (6 pairs) | 6 of 6 seeds |" in table
    assert "| mutation (SEARL-like) | 31.0 ± 1.0 | 3 | 1 (3 pairs) | 0 of 3 seeds |" in table


def test_extending_the_tables_with_later_seeds_keeps_the_earlier_ones(evidence, tmp_path):
    out, results = tmp_path / "evidence", tmp_path / "results"
    for seed in range(3):
        fake_run(out / "baselines" / "runs" / f"pbtnas-s{seed}", 40.0 + seed)
        fake_run(out / "baselines" / "runs" / f"random-s{seed}", 50.0 + seed)
        fake_run(out / "baselines" / "runs" / f"mutation-s{seed}", 45.0 + seed)
    # the second invocation asks for seeds 2..3 only (--first-seed 2 --seeds 2)
    evidence.collect(Namespace(out=out, results=results, seeds=2, first_seed=2, grids=False, preset="gan-mnist-small"))
    rows = list(csv.DictReader(open(results / "gan-baselines.csv")))
    found = {(r["algorithm"], int(r["seed"])) for r in rows if r["metric"] == "fd_clf_test"}
    assert found == {(a, s) for a in ("pbtnas", "random", "mutation") for s in range(3)}
