"""``pbtnas compare``: table maths, paired Wilcoxon, reuse of finished runs, the real CLI."""

import csv
import json
import math

import pytest

from pbtnas.analysis.compare import Comparison, RunResult, compare, paired_wilcoxon, parse_algorithms
from pbtnas.cli import main
from pbtnas.errors import ConfigError
from pbtnas.rundir.atomic import atomic_write_json
from pbtnas.rundir.store import RunStore

TINY = [
    "--population",
    "4",
    "--steps",
    "2",
    "--set",
    "task.batches_per_step=2",
    "--set",
    "task.width=4",
    "--set",
    "task.cells=1",
    "--set",
    "backend=inprocess",
]


def test_parse_algorithms_expands_groups_and_rejects_unknown():
    assert parse_algorithms("baselines") == ["pbtnas", "random", "mutation"]
    assert parse_algorithms("pbtnas,ablations") == ["pbtnas", "sp-1-0", "sp-0-1", "no-mixing"]
    with pytest.raises(ConfigError, match="unknown algorithm 'bogus' in --algorithms; known: "):
        parse_algorithms("pbtnas,bogus")
    with pytest.raises(ConfigError, match=r"unknown algorithm 'nsga' in --algorithms \(did you mean 'nsga2'\?\); known: "):
        parse_algorithms("pbtnas,nsga")


def test_paired_wilcoxon_is_one_sided_and_paired():
    ref = {0: 0.9, 1: 0.8, 2: 0.85, 3: 0.7}
    worse = {0: 0.8, 1: 0.7, 2: 0.8, 3: 0.6}
    better = paired_wilcoxon(ref, worse, higher_is_better=True)
    assert better["pairs"] == 4 and better["p_value"] == pytest.approx(1 / 16)
    assert paired_wilcoxon(ref, worse, higher_is_better=False)["p_value"] == pytest.approx(1.0)
    assert paired_wilcoxon(ref, {0: 0.8, 7: 0.1}, True)["pairs"] == 1  # only seeds both finished
    assert math.isnan(paired_wilcoxon(ref, dict(ref), True)["p_value"])  # all ties: undefined
    assert paired_wilcoxon(ref, {}, True)["p_value"] is None


def test_table_mean_std_markdown_and_csv():
    comp = Comparison("test_accuracy", "val_accuracy", True, "pbtnas", ["pbtnas", "random"], [0, 1, 2])
    for seed, (a, b) in enumerate([(0.9, 0.8), (0.8, 0.75), (0.85, 0.8)]):
        comp.runs.append(RunResult("pbtnas", seed, f"runs/pbtnas-s{seed}", a, a, 10.0, True))
        comp.runs.append(RunResult("random", seed, f"runs/random-s{seed}", b, b, 8.0, True))
    comp.runs.append(RunResult("random", 3, "runs/random-s3", None, None, None, False))  # unfinished: ignored
    rows = {r["algorithm"]: r for r in comp.rows()}
    assert rows["pbtnas"]["metric_mean"] == pytest.approx(0.85) and rows["pbtnas"]["metric_std"] == pytest.approx(0.05)
    assert rows["random"]["n"] == 3 and rows["random"]["p_value"] == pytest.approx(0.125)
    md = comp.markdown()
    assert "| pbtnas | 0.8500 ± 0.0500 |" in md and "0.125 (3 pairs)" in md and "higher is better" in md
    table = list(csv.DictReader(comp.csv().splitlines()))
    assert [r["algorithm"] for r in table] == ["pbtnas", "random"] and float(table[1]["p_value"]) == pytest.approx(0.125)


def test_compare_runs_each_pair_once_and_reuses_finished_runs(tmp_path):
    calls = []

    def fake_run(config, run_dir):
        calls.append((config.algorithm, config.seed, config.population, config.steps))
        value = 0.5 + 0.1 * config.seed + (0.05 if config.algorithm == "pbtnas" else 0.0)
        RunStore(run_dir).root.mkdir(parents=True)
        atomic_write_json(
            RunStore(run_dir).root / "summary.json", {"final_metric": value, "best_fitness": value, "wall_time_s": 1.0, "finished": True}
        )

    from conftest import TINY_TASK

    base = {"task": dict(TINY_TASK), "population": 4, "steps": 2}
    comp = compare(base, ["pbtnas", "random"], [0, 1, 2], tmp_path, run_fn=fake_run)
    assert sorted(calls) == sorted((a, s, 4, 2) for a in ("pbtnas", "random") for s in (0, 1, 2))
    assert comp.rows()[1]["p_value"] == pytest.approx(0.125)
    calls.clear()
    compare(base, ["pbtnas", "random"], [0, 1, 2], tmp_path, run_fn=fake_run)
    assert calls == []  # everything reused
    data = json.loads((tmp_path / "compare.json").read_text())
    assert data["reference"] == "pbtnas" and len(data["runs"]) == 6
    assert (tmp_path / "table.md").is_file() and (tmp_path / "runs.csv").is_file()


def test_compare_cli_end_to_end(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", "classification-digits", "--algorithms", "pbtnas,random", "--seeds", "2", "--out", str(out), "--quiet", *TINY]) == 0
    printed = capsys.readouterr().out
    assert "| pbtnas |" in printed and "| random |" in printed
    rows = list(csv.DictReader(open(out / "runs.csv")))
    assert len(rows) == 4 and all(r["finished"] == "True" for r in rows)
    # Same seed, same initial population: the runs are paired.
    first = lambda algo: next(RunStore(out / "runs" / f"{algo}-s0").iter_events("member_created"))["genome"]  # noqa: E731
    assert first("pbtnas") == first("random")
    assert main(["compare", "classification-digits", "--algorithms", "nope", "--seeds", "2", "--out", str(out), *TINY]) == 2
    # status of the comparison folder: one line per run
    capsys.readouterr()
    (out / "runs" / "random-s1" / "population.json").unlink()  # as if that run never started
    assert main(["status", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"comparison {out}: 3 of 4 runs finished"
    by_run = {line.split()[0]: line.split()[1:] for line in lines[2:6]}
    assert by_run["pbtnas-s0"][:2] == ["finished", "2/2"] and by_run["random-s1"][:2] == ["not", "started"]
    assert main(["status", str(out), "--json"]) == 0
    assert [r["run"] for r in json.loads(capsys.readouterr().out)] == ["pbtnas-s0", "pbtnas-s1", "random-s0", "random-s1"]


def test_compare_refuses_a_folder_with_another_budget(tmp_path):
    from conftest import TINY_TASK

    def fake_run(config, run_dir):
        RunStore(run_dir).create(config.to_dict())
        atomic_write_json(RunStore(run_dir).root / "summary.json", {"final_metric": 0.5, "best_fitness": 0.5, "finished": True})

    base = {"task": dict(TINY_TASK), "population": 4, "steps": 2}
    compare(base, ["random"], [0], tmp_path, run_fn=fake_run)
    compare({**base, "workers": 3}, ["random"], [0], tmp_path, run_fn=fake_run)  # execution settings may differ
    with pytest.raises(ConfigError, match=r"other settings \(steps\)"):
        compare({**base, "steps": 3}, ["random"], [0], tmp_path, run_fn=fake_run)


def test_a_comparison_that_cannot_start_leaves_no_folder(tmp_path, capsys):
    """What a run checks before it starts (here: an environment name) is checked before the
    comparison's folder is made."""
    from pbtnas.cli import main

    out = tmp_path / "cmp"
    assert main(["compare", "rl-cheetah", "--set", "task.env=hopper-flyy", "--seeds", "1", "--out", str(out), "--quiet"]) == 2
    assert "did you mean hopper-hop" in capsys.readouterr().err
    assert not out.exists()
