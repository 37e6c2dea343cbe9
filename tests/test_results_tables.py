"""benchmarks/results_tables.py: the docs' results tables rebuilt from the per-run CSVs, checked
against the docs, and bad CSVs refused with one line."""

import csv
import importlib.util
import json
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest

from pbtnas.analysis.compare import paired_wilcoxon

ROOT = Path(__file__).resolve().parents[1]
HEADER = "table,algorithm,seed,metric,value\n"


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rt():
    return load_script("results_tables")


# Synthetic FD-clf-like values (lower is better) of three algorithms on five seeds.
FD = {
    "pbtnas": [40.0, 52.5, 61.0, 38.25, 70.0],
    "random": [55.0, 50.0, 80.0, 45.0, 90.0],
    "mutation": [41.0, 60.0, 59.0, 39.0, 71.5],
}
MADE = {"pbtnas": [1, 1, 0, 1, 1], "random": [0] * 5, "mutation": [1] * 5}


def write_csv(path: Path, table: str = "gan-baselines", values=FD, extra: str = "") -> Path:
    lines = [HEADER]
    for algorithm, vals in values.items():
        for seed, value in enumerate(vals):
            lines.append(f"{table},{algorithm},{seed},fd_clf_test,{value!r}\n")
            lines.append(f"{table},{algorithm},{seed},final_made_in_search,{float(MADE[algorithm][seed])!r}\n")
            lines.append(f"{table},{algorithm},{seed},cpu_s,{1000.0 + 10 * seed!r}\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines) + extra)
    return path


def row_of(markdown: str, label: str) -> list[str]:
    line = next(ln for ln in markdown.splitlines() if ln.startswith(f"| {label} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_summary_figures_match_numpy_and_paired_wilcoxon(rt, tmp_path):
    write_csv(tmp_path / "gan-baselines.csv")
    spec = next(s for s in rt.SPECS if s.name == "gan-baselines")
    data = rt.load(spec, tmp_path)
    table = rt.render_summary(data)
    assert "seeds 0–4" in table
    ref = dict(enumerate(FD["pbtnas"]))
    for algorithm, label in (("random", "random search"), ("mutation", "mutation (SEARL-like)")):
        vals = np.array(FD[algorithm])
        cells = row_of(table, label)
        assert cells[1] == f"{vals.mean():.1f} ± {np.std(vals, ddof=1):.1f}"
        assert cells[2] == f"{np.median(vals):.1f}"
        assert cells[3] == "5"
        wins = sum(ref[s] < v for s, v in enumerate(vals))  # lower is better
        assert cells[4] == f"{wins} of 5 seeds"
        p = paired_wilcoxon(ref, dict(enumerate(vals)), higher_is_better=False)["p_value"]
        assert cells[5] == f"{p:.3g}"
        assert cells[6] == f"{sum(MADE[algorithm])} of 5 runs"
        assert cells[7] == "1,020"  # mean of 1000, 1010, ..., 1040
    assert row_of(table, "random search")[4] == "4 of 5 seeds"  # seed 1: 52.5 against 50.0
    assert row_of(table, "PBT-NAS, shrink-perturb (0.4, 0.1)")[4:6] == ["–", "–"]
    assert row_of(table, "PBT-NAS, shrink-perturb (0.4, 0.1)")[6] == "4 of 5 runs"

    seeds = rt.render_seeds(data)
    assert "| 3 | 38.2 | 45.0 | 39.0 |" in seeds  # 38.25 -> 38.2 (round half to even)


def test_variant_tables_test_the_other_direction_and_all_ties_are_named(rt, tmp_path):
    spec = rt.TableSpec("t", "t.csv", "acc", "accuracy", True, "default", ("default", "a", "b"), reference_better=False)
    rows = [HEADER]
    for seed, (d, a, b) in enumerate([(0.90, 0.95, 0.90), (0.91, 0.96, 0.91), (0.92, 0.93, 0.92)]):
        rows += [f"t,default,{seed},acc,{d}\n", f"t,a,{seed},acc,{a}\n", f"t,b,{seed},acc,{b}\n"]
    (tmp_path / "t.csv").write_text("".join(rows))
    table = rt.render_summary(rt.load(spec, tmp_path))
    assert row_of(table, "a")[4:6] == ["3 of 3 seeds", "0.125"]  # a better than default on every seed
    assert row_of(table, "b")[4:6] == ["0 of 3 seeds", "n/a (all 3 pairs tied)"]
    assert "final network made in the search" not in table and "CPU" not in table


def doc_with_blocks(path: Path) -> Path:
    path.write_text(
        "# Results\n\nProse stays.\n\n"
        "<!-- results:gan-baselines:summary -->\n<!-- /results:gan-baselines:summary -->\n\n"
        "Between the tables.\n\n"
        "<!-- results:gan-baselines:seeds -->\nstale\n<!-- /results:gan-baselines:seeds -->\n\n"
        "<!-- results:sequence:summary -->\n<!-- /results:sequence:summary -->\n"
        "<!-- results:headline:gan -->\n<!-- /results:headline:gan -->\n"
    )
    return path


def test_write_then_check_passes_and_an_edit_is_named(rt, tmp_path, capsys):
    results = tmp_path / "results"
    write_csv(results / "gan-baselines.csv")
    doc = doc_with_blocks(tmp_path / "doc.md")
    args = ["--results", str(results), "--docs", str(doc)]
    assert rt.main(["--check", *args]) == 1  # empty and stale blocks
    assert rt.main(["--write", *args]) == 0
    text = doc.read_text()
    assert "Prose stays." in text and "Between the tables." in text and "stale" not in text
    assert "| 2 | 61.0 | 80.0 | 59.0 |" in text
    assert "No runs finished yet (`docs/results/sequence.csv` does not exist yet)." in text
    assert "| gan-baselines: PBT-NAS vs random (FD-clf test, lower is better) | 4 of 5 seeds |" in text
    capsys.readouterr()
    assert rt.main(["--check", *args]) == 0
    assert rt.main(["--write", *args]) == 0 and doc.read_text() == text  # idempotent

    doc.write_text(text.replace("| 2 | 61.0 | 80.0 | 59.0 |", "| 2 | 61.0 | 80.1 | 59.0 |"))
    capsys.readouterr()
    assert rt.main(["--check", *args]) == 1
    out = capsys.readouterr().out.splitlines()
    line = text.splitlines().index("| 2 | 61.0 | 80.0 | 59.0 |") + 1
    assert out[0] == f"{doc}: block gan-baselines:seeds, line {line} (line 7 of the block) differs from the data"
    assert out[1] == "  expected: | 2 | 61.0 | 80.0 | 59.0 |"
    assert out[2] == "  found:    | 2 | 61.0 | 80.1 | 59.0 |"


def bad_csv(results: Path, case: str) -> Path:
    path = results / "gan-baselines.csv"
    if case == "missing-seed":
        values = {**FD, "random": FD["random"][:3]}  # random lacks seeds 3 and 4
        return write_csv(path, values=values)
    write_csv(path)
    text = path.read_text()
    if case == "missing-metric":
        text = text.replace("gan-baselines,mutation,2,fd_clf_test,59.0\n", "")
    elif case == "duplicate":
        text += "gan-baselines,random,1,cpu_s,5.0\n"
    elif case == "non-numeric":
        text = text.replace("gan-baselines,random,4,fd_clf_test,90.0", "gan-baselines,random,4,fd_clf_test,nine")
    elif case == "non-finite":
        text = text.replace("gan-baselines,random,4,fd_clf_test,90.0", "gan-baselines,random,4,fd_clf_test,nan")
    elif case == "unknown-algorithm":
        text += "gan-baselines,bohb,0,fd_clf_test,1.0\n"
    elif case == "bad-seed":
        text += "gan-baselines,random,one,fd_clf_test,1.0\n"
    elif case == "missing-columns":
        text = "table,algorithm,metric\ngan-baselines,pbtnas,fd_clf_test\n"
    path.write_text(text)
    return path


BAD = {
    "missing-seed": "missing run: another algorithm of the table has this seed (algorithm random, seed 3)",
    "missing-metric": "run lacks the table's metric fd_clf_test (algorithm mutation, seed 2)",
    "duplicate": "duplicated row for metric cpu_s (algorithm random, seed 1)",
    "non-numeric": "non-numeric value 'nine' of metric fd_clf_test (algorithm random, seed 4)",
    "non-finite": "non-finite value 'nan' of metric fd_clf_test (algorithm random, seed 4)",
    "unknown-algorithm": "algorithm not in the table's spec (known: pbtnas, random, mutation) (algorithm bohb, seed 0)",
    "bad-seed": "seed 'one' is not an integer (algorithm random, seed one)",
    "missing-columns": "missing columns seed, value; expected table,algorithm,seed,metric,value",
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_csv_is_refused_with_one_line(rt, tmp_path, capsys, case):
    path = bad_csv(tmp_path / "results", case)
    doc = doc_with_blocks(tmp_path / "doc.md")
    for mode in ("--check", "--write"):
        assert rt.main([mode, "--results", str(path.parent), "--docs", str(doc)]) == 2
        captured = capsys.readouterr()
        assert captured.err.splitlines() == [f"error: {path}: {BAD[case]}"]


def test_bad_csv_from_the_command_line_has_no_traceback(tmp_path):
    path = bad_csv(tmp_path / "results", "duplicate")
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "results_tables.py"),
            "--check",
            "--results",
            str(path.parent),
            "--docs",
            str(tmp_path / "none.md"),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"error: {path}: {BAD['duplicate']}"]


def test_unknown_or_unclosed_blocks_are_refused(rt, tmp_path, capsys):
    doc = tmp_path / "doc.md"
    doc.write_text("<!-- results:gan-baseline:summary -->\n<!-- /results:gan-baseline:summary -->\n")
    assert rt.main(["--check", "--results", str(tmp_path), "--docs", str(doc)]) == 2
    assert "unknown block 'gan-baseline:summary'" in capsys.readouterr().err
    doc.write_text("<!-- results:gan-baselines:summary -->\n")
    assert rt.main(["--check", "--results", str(tmp_path), "--docs", str(doc)]) == 2
    assert "has no closing <!-- /results:gan-baselines:summary -->" in capsys.readouterr().err


def test_gan_collector_writes_final_made_in_search(tmp_path):
    """benchmarks/gan_evidence.py writes the column the summary tables count (uid >= population)."""
    evidence = load_script("gan_evidence")
    out, results = tmp_path / "runs", tmp_path / "results"
    runs = [("pbtnas", 0, 9), ("random", 0, 3), ("mutation", 0, 12), ("pbtnas", 1, 9)]  # seed 1 under way
    for algorithm, seed, uid in runs:
        path = out / "baselines" / "runs" / f"{algorithm}-s{seed}"
        path.mkdir(parents=True)
        summary = {"finished": True, "best_fitness": -50.0, "wall_time_s": 1.0, "best_uid": uid, "population": 8}
        summary["final_metrics"] = {"fd_clf_test": 50.0, "fd_clf_train": 49.0, "clf_is": 2.0}
        (path / "summary.json").write_text(json.dumps(summary))
    evidence.collect(Namespace(out=out, results=results, seeds=2, first_seed=0, grids=False, preset="gan-mnist-small"))
    rows = list(csv.DictReader(open(results / "gan-baselines.csv")))
    made = {r["algorithm"]: r["value"] for r in rows if r["metric"] == "final_made_in_search"}
    assert made == {"pbtnas": "1.0", "random": "0.0", "mutation": "1.0"}
    assert {r["seed"] for r in rows} == {"0"}  # a seed that not every algorithm finished stays out


def test_the_repository_docs_agree_with_the_committed_data(rt, capsys):
    """CI keeps docs/RESULTS.md and README.md consistent with docs/results/*.csv: after new runs,
    ``python benchmarks/results_tables.py --write`` and commit."""
    assert rt.main(["--check"]) == 0, capsys.readouterr()


def test_evidence_collector_writes_complete_seeds_with_their_record(tmp_path):
    """benchmarks/evidence.py: a seed enters the CSV once every algorithm finished it; each copy
    carries its run's record and names a task file inside the repository."""
    load_script("gan_evidence")  # evidence.py takes code_version from it
    evidence = load_script("evidence")
    out, results = tmp_path / "runs", tmp_path / "results"
    out.mkdir()
    task = str(tmp_path / "checkout" / "examples" / "sequence_classification.py") + ":Waveforms"
    records = []
    for algorithm, seed, uid in [("pbtnas", 0, 9), ("random", 0, 3), ("bohb", 0, 11), ("pbtnas", 1, 2)]:
        path = out / "sequence" / "runs" / f"{algorithm}-s{seed}"
        path.mkdir(parents=True)
        summary = {"finished": True, "task": task, "best_fitness": 0.7, "wall_time_s": 1.0, "best_uid": uid, "population": 8}
        summary["final_metrics"] = {"test_accuracy": 0.7}
        (path / "summary.json").write_text(json.dumps(summary))
        records.append(json.dumps({"table": "sequence", "algorithm": algorithm, "seed": seed, "cpu_s": 30.0, "commit": "abc"}))
    (out / "cpu_seconds.jsonl").write_text("\n".join(records) + "\n")
    args = Namespace(out=out, results=results, seeds=2, first_seed=0)
    evidence.collect(args, "sequence", evidence.TABLES["sequence"])
    rows = list(csv.DictReader(open(results / "sequence.csv")))
    assert {r["seed"] for r in rows} == {"0"}
    made = {r["algorithm"]: r["value"] for r in rows if r["metric"] == "final_made_in_search"}
    assert made == {"pbtnas": "1.0", "random": "0.0", "bohb": "1.0"}
    copy = json.loads((results / "runs" / "sequence" / "pbtnas-s1.json").read_text())
    assert copy["task"] == "examples/sequence_classification.py:Waveforms" and copy["evidence"]["commit"] == "abc"
