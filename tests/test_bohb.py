"""algorithm: bohb — TPE + Hyperband (Optuna) at PBT-NAS's budget of member steps."""

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("optuna")

from run_helpers import StopAfterResults  # noqa: E402

from pbtnas.config import config_from_dict  # noqa: E402
from pbtnas.engine.bohb import bracket_of, rung_table, trial_history  # noqa: E402
from pbtnas.engine.runner import Runner, make_runner, resume_runner  # noqa: E402
from pbtnas.errors import ConfigError  # noqa: E402
from pbtnas.rundir.store import RunStore  # noqa: E402
from pbtnas.search.hyperband import bracket_cost, bracket_plan, check_budget, rungs  # noqa: E402

TASK = {"name": "simulated", "layers": 3, "width": 4, "step_seconds": 0.0, "batches_per_step": 2}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_config(**overrides):
    data = {
        "task": dict(TASK),
        "population": 4,
        "steps": 4,
        "seed": 4,
        "backend": "inprocess",
        "algorithm": "bohb",
        "bohb_eta": 2,
        "loggers": ["none"],
    }
    data.update(overrides)
    return config_from_dict(data)


def ends(run_dir):
    """trial -> (end, at_step) from the journal (the last end event of a trial wins)."""
    out = {}
    for e in RunStore(run_dir).events():
        if e["event"] in ("trial_completed", "trial_pruned", "trial_stopped", "trial_failed"):
            out[e["trial"]] = (e["event"], e["at_step"])
    return out


def trained(run_dir):
    """(trial, step) -> fitness of every member_trained event (a redone step counts once)."""
    return {(e["trial"], e["step"]): e["fitness"] for e in RunStore(run_dir).events() if e["event"] == "member_trained"}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    root = tmp_path_factory.mktemp("bohb") / "run"
    summary = make_runner(make_config(), root, progress=False).start().run()
    return root, summary


def test_budget_is_exactly_population_times_steps(finished):
    root, summary = finished
    assert summary["member_steps"] == summary["budget_member_steps"] == 4 * 4
    assert len(trained(root)) == 16 and summary["steps_done"] == 4
    assert summary["trials"] == sum(summary[f"trials_{e}"] for e in ("completed", "pruned", "stopped", "failed"))
    assert summary["trials_completed"] >= 1 and summary["trials_pruned"] >= 1
    events = RunStore(root).events()
    started = [e for e in events if e["event"] == "trial_started"]
    assert [e["trial"] for e in started] == list(range(summary["trials"]))
    assert [e["source"] for e in started[:4]] == ["stratified"] * 4
    # the first trials are the stratified population every other algorithm starts from
    first = json.loads((root / "population.json").read_text())["members"][:4]
    from pbtnas.engine import seeding
    from pbtnas.tasks import build_task

    task = build_task(TASK)
    assert [m["genome"] for m in first] == task.space.stratified_population(4, seeding.rng_for(4, seeding.INIT))
    # every trial ended once, at the steps it trained; a pruned trial ended at one of its rungs
    by_trial = {}
    for number, step in trained(root):
        by_trial[number] = max(by_trial.get(number, 0), step + 1)
    for number, (end, at) in ends(root).items():
        assert at == by_trial[number]
        if end == "trial_pruned":
            bracket = started[number]["bracket"]
            assert at in rungs(4, 2, bracket)
        if end == "trial_completed":
            assert at == 4
    assert summary["best_uid"] in by_trial and summary["final_metric"] is not None


def test_brackets_are_optunas(finished):
    import optuna

    root, _ = finished
    study = optuna.load_study(
        study_name="pbtnas-bohb-s4",
        storage=optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(root / "optuna-study.log"))),
    )
    pruner = optuna.pruners.HyperbandPruner(min_resource=1, max_resource=4, reduction_factor=2)
    pruner._try_initialization(study)
    for frozen in study.get_trials():
        assert pruner._get_bracket_id(study, frozen) == bracket_of("pbtnas-bohb-s4", frozen.number, 4, 2)
    states = {t.number: t.state.name for t in study.get_trials()}
    expected = {"trial_completed": "COMPLETE", "trial_pruned": "PRUNED", "trial_stopped": "PRUNED"}
    assert {n: expected[e] for n, (e, _) in ends(root).items()} == states


def test_rung_costs_and_the_budget_rule():
    assert rungs(16, 3) == [1, 3, 9] and rungs(16, 3, 1) == [3, 9] and rungs(16, 3, 2) == [9]
    # 27 trials: 18 stop after 1 step, 6 after 3, 2 after 9, one trains all 16
    assert bracket_plan(16, 3) == [(1, 18, 18), (3, 6, 18), (9, 2, 18), (16, 1, 16)]
    assert bracket_cost(16, 3) == 70 and bracket_cost(1, 3) == 1 and bracket_cost(4, 2) == 8
    check_budget(5, 16, 3)
    with pytest.raises(ConfigError, match="population >= 5"):
        check_budget(4, 16, 3)
    with pytest.raises(ConfigError, match="smaller than one Hyperband bracket"):
        make_config(population=4, steps=16, bohb_eta=3)
    with pytest.raises(ConfigError, match="mode"):
        make_config(mode="async")
    with pytest.raises(ConfigError, match="bohb_eta"):
        make_config(bohb_eta=1)


def test_resume_after_a_stop_ends_as_an_unbroken_run(finished, tmp_path):
    root, summary = finished
    broken = tmp_path / "b"
    runner = make_runner(make_config(), broken, progress=False)
    runner.observers.append(StopAfterResults(7))
    with pytest.raises(KeyboardInterrupt):
        runner.start().run()
    assert not (broken / "summary.json").exists()
    resumed = resume_runner(broken, progress=False).run()
    for key in ("best_fitness", "best_uid", "final_metric", "member_steps", "trials", "trials_pruned"):
        assert resumed[key] == summary[key], key
    assert trained(broken) == trained(root) and ends(broken) == ends(root)


def test_resume_when_optuna_is_ahead_of_the_manifest(finished, tmp_path, monkeypatch):
    """A kill between Optuna's record of a step (report, prune, tell) and the manifest's commit:
    the step is redone and Optuna's record of it is kept."""
    root, summary = finished
    broken = tmp_path / "b"
    calls = {"n": 0}
    original = Runner._write_manifest

    def dies(self, finished=False):
        calls["n"] += 1
        if calls["n"] == 9:
            raise KeyboardInterrupt
        return original(self, finished)

    monkeypatch.setattr(Runner, "_write_manifest", dies)
    with pytest.raises(KeyboardInterrupt):
        make_runner(make_config(), broken, progress=False).start().run()
    monkeypatch.setattr(Runner, "_write_manifest", original)
    resumed = resume_runner(broken, progress=False).run()
    for key in ("best_fitness", "best_uid", "final_metric", "member_steps", "trials"):
        assert resumed[key] == summary[key], key
    assert trained(broken) == trained(root) and ends(broken) == ends(root)


def test_a_trial_optuna_started_but_the_manifest_never_saw_is_voided(tmp_path, monkeypatch):
    broken = tmp_path / "b"
    original = Runner._write_manifest

    def dies_on_new_trial(self, finished=False):
        if len(self.schedule.trials) == 3 and self.schedule.trials[2].steps_done == 0:
            raise KeyboardInterrupt  # trial 2 asked of Optuna, not yet committed
        return original(self, finished)

    monkeypatch.setattr(Runner, "_write_manifest", dies_on_new_trial)
    with pytest.raises(KeyboardInterrupt):
        make_runner(make_config(), broken, progress=False).start().run()
    monkeypatch.setattr(Runner, "_write_manifest", original)
    summary = resume_runner(broken, progress=False).run()
    events = RunStore(broken).events()
    assert [e["trial"] for e in events if e["event"] == "trial_voided"] == [2]
    assert summary["member_steps"] == 16 and (2, 0) not in trained(broken)


def test_resume_refuses_to_change_steps(finished, tmp_path):
    broken = tmp_path / "b"
    runner = make_runner(make_config(), broken, progress=False)
    runner.observers.append(StopAfterResults(3))
    with pytest.raises(KeyboardInterrupt):
        runner.start().run()
    with pytest.raises(ConfigError, match="cannot change steps"):
        resume_runner(broken, overrides={"steps": 8}, progress=False)


def test_report_status_and_export_of_a_bohb_run(finished, tmp_path, capsys):
    from pbtnas.cli import main

    root, summary = finished
    history = trial_history(root)
    assert history["member_steps"] == 16 and len(history["trials"]) == summary["trials"]
    table = rung_table(history)
    assert table[0] == {
        "bracket": 0,
        "rung": 0,
        "at_step": 1,
        "reached": table[0]["reached"],
        "promoted": table[0]["promoted"],
        "pruned": table[0]["pruned"],
    }
    assert table[0]["reached"] == table[0]["promoted"] + table[0]["pruned"] + sum(
        1 for t in history["trials"] if t["bracket"] == 0 and t["steps"] == 1 and t["end"] == "stopped"
    )
    from pbtnas.analysis.report import load_history
    from pbtnas.analysis.report.page import _bohb_section

    section = _bohb_section(load_history(root))
    assert "BOHB trials" in section and f"{summary['trials']} trials" in section and "16 of the budget" in section
    assert main(["status", str(root)]) == 0
    assert "bohb on simulated" in capsys.readouterr().out
    assert main(["export", str(root), "--out", str(tmp_path / "net")]) == 0


def test_compare_puts_bohb_in_the_table(tmp_path):
    from pbtnas.analysis.compare import compare

    base = make_config().to_dict()
    result = compare(base, ["random", "bohb"], [4], tmp_path / "cmp")
    rows = {r["algorithm"]: r for r in result.rows()}
    assert rows["bohb"]["n"] == 1 and "| bohb |" in (tmp_path / "cmp" / "table.md").read_text()


def _cli(*args, env=None, pre=""):
    code = pre + "import sys; from pbtnas.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, env={**os.environ, **(env or {})}, timeout=300
    )


def test_bad_input_is_one_line_and_leaves_no_run_directory(tmp_path):
    out = tmp_path / "r"
    small = _cli("run", "classification", "--algorithm", "bohb", "--population", "4", "--out", str(out))
    assert small.returncode == 2 and small.stderr.count("\n") == 1 and small.stderr.startswith("error: ")
    assert "70 member steps" in small.stderr and not out.exists()
    missing = _cli("run", "classification-digits", "--algorithm", "bohb", "--out", str(out), pre="import sys; sys.modules['optuna'] = None; ")
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert "pbtnas[bohb]" in missing.stderr and not out.exists()
    cmp = _cli(
        "compare",
        "classification-digits",
        "--algorithms",
        "random,bohb",
        "--seeds",
        "1",
        "--out",
        str(tmp_path / "c"),
        pre="import sys; sys.modules['optuna'] = None; ",
    )
    assert cmp.returncode == 2 and "pbtnas[bohb]" in cmp.stderr and not (tmp_path / "c" / "runs").exists()


@pytest.mark.slow
def test_parallel_trials_on_the_local_backend_keep_the_budget(tmp_path):
    summary = make_runner(make_config(backend="local", workers=2, population=6), tmp_path / "r", progress=False).start().run()
    assert summary["member_steps"] == 24 == len(trained(tmp_path / "r"))


def test_a_torn_last_line_of_the_study_log_is_cut(tmp_path):
    from pbtnas.engine.bohb import _repair_log

    log = tmp_path / "optuna-study.log"
    log.write_bytes(b'{"op_code":0}\n{"op_code":4,"stu')
    _repair_log(log)
    assert log.read_bytes() == b'{"op_code":0}\n'
    _repair_log(log)
    assert log.read_bytes() == b'{"op_code":0}\n'


@pytest.mark.parametrize("fault", ["after-step:1:kill", pytest.param("dispatched:2:kill", marks=pytest.mark.slow)])
def test_a_killed_driver_resumes_to_the_unbroken_result(finished, tmp_path, fault):
    """SIGKILL of the driver (after a commit, or while a local worker trains a step): resume
    redoes the step in flight and ends as the unbroken in-process run did."""
    import yaml

    root, summary = finished
    # a kill after a commit needs no worker process (in-process saves two interpreter starts); a
    # kill while a local worker trains does
    config = (make_config(backend="local", workers=1) if fault.startswith("dispatched") else make_config()).to_dict()
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    out = tmp_path / "r"
    killed = _cli("run", str(tmp_path / "c.yaml"), "--out", str(out), "--quiet", env={"PBTNAS_FAULT": fault})
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert not (out / "summary.json").exists()
    resumed = _cli("resume", str(out), "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    final = json.loads((out / "summary.json").read_text())
    for key in ("best_fitness", "best_uid", "final_metric", "member_steps", "trials"):
        assert final[key] == summary[key], key
    assert trained(out) == trained(root) and ends(out) == ends(root)
