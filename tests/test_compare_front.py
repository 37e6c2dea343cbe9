"""pbtnas compare on multi-objective runs: each run's final hypervolume from one shared reference
point over the union of the runs' fronts, and the one-sided Wilcoxon test on it (issue 23)."""

import csv
import io
import json

import pytest
from mo_helpers import OBJECTIVES, mo_config

from pbtnas.analysis.compare import Comparison, RunResult, compare
from pbtnas.search.objectives import hypervolume, parse_objectives

OBJ = parse_objectives(OBJECTIVES)


def result(algorithm, seed, front):
    return RunResult(algorithm, seed, f"runs/{algorithm}-s{seed}", 0.5, 0.5, 1.0, True, front=front)


def test_every_run_is_measured_from_one_reference_point_over_all_fronts():
    comparison = Comparison("test_accuracy", "val_accuracy", True, "pbtnas", ["pbtnas", "random"], [0, 1], objectives=OBJ)
    fronts = {
        ("pbtnas", 0): [{"fitness": 0.9, "params": 100.0}, {"fitness": 0.5, "params": 20.0}],
        ("random", 0): [{"fitness": 0.6, "params": 300.0}],
        ("pbtnas", 1): [{"fitness": 0.8, "params": 50.0}],
        ("random", 1): [{"fitness": 0.4, "params": 60.0}],
    }
    comparison.runs = [result(a, s, f) for (a, s), f in fronts.items()]
    comparison.measure_fronts()
    # the worst of the union (fitness 0.4, params 300) moved 10% of the range further
    assert comparison.hypervolume_reference == pytest.approx({"fitness": 0.4 - 0.05, "params": 300 + 28})
    for run in comparison.runs:
        assert run.hypervolume == pytest.approx(hypervolume(fronts[run.algorithm, run.seed], OBJ, comparison.hypervolume_reference))
    row = {r["algorithm"]: r for r in comparison.rows()}["random"]
    assert row["hv_pairs"] == 2 and row["hv_p_value"] == pytest.approx(0.25)  # pbtnas better on both seeds: 1/2**2
    table = comparison.markdown()
    assert "hypervolume (fitness:max, params:min; higher is better) | p (hypervolume) |" in table.splitlines()[0]
    assert "0.25 (2 pairs)" in table and "reference point: fitness = 0.35, params = 328" in table
    assert "hv_p_value" in comparison.csv().splitlines()[0]


def test_a_single_objective_comparison_keeps_its_table():
    comparison = Comparison("test_accuracy", "val_accuracy", True, "pbtnas", ["pbtnas", "random"], [0])
    comparison.runs = [result("pbtnas", 0, None), result("random", 0, None)]
    assert "hypervolume" not in comparison.markdown() and "hv_" not in comparison.csv()
    assert "hypervolume" not in comparison.runs_csv()


@pytest.mark.slow  # two real runs (about 10 s); the fast tests above cover the arithmetic
def test_compare_of_multi_objective_runs_writes_the_hypervolume(tmp_path):
    base = mo_config(steps=2).to_dict()
    out = tmp_path / "cmp"
    comparison = compare(base, ["pbtnas", "random"], [0], out)
    runs = list(csv.DictReader(io.StringIO((out / "runs.csv").read_text())))
    assert [r["algorithm"] for r in runs] == ["pbtnas", "random"] and all(float(r["hypervolume"]) > 0 for r in runs)
    saved = json.loads((out / "compare.json").read_text())
    reference = saved["hypervolume_reference"]
    for r in runs:
        summary = json.loads((out / r["run_dir"] / "summary.json").read_text())
        values = [m["final_objectives"] for m in summary["pareto_front"] if m["feasible"]]
        assert float(r["hypervolume"]) == pytest.approx(hypervolume(values, OBJ, reference))
    assert "p (hypervolume)" in (out / "table.md").read_text() and comparison.objectives == OBJ
