"""The nsga2 baseline (Optuna's NSGAIISampler, trials trained from scratch) and random search with
several objectives, at PBT-NAS's member-step budget; resume after a kill is held by
tests/test_schedule_contracts.py, which runs every registered schedule."""

import json

import pytest

from pbtnas.cli import main
from pbtnas.config import config_from_dict
from pbtnas.engine.runner import make_runner
from pbtnas.errors import ConfigError
from pbtnas.search.objectives import pareto_front, parse_objectives

pytest.importorskip("optuna")

TASK = {"name": "simulated", "layers": 3, "width": 4, "step_seconds": 0.0, "batches_per_step": 2}
OBJECTIVES = ["fitness", "params:min"]


def config(**overrides):
    data = {"task": dict(TASK), "population": 4, "steps": 4, "seed": 2, "backend": "inprocess", "objectives": OBJECTIVES, **overrides}
    return config_from_dict(data)


@pytest.fixture(scope="module")
def nsga2_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("nsga2") / "run"
    make_runner(config(algorithm="nsga2", nsga2_trial_steps=2), root, progress=False).start().run()
    return root


def events(root, kind):
    return [e for e in map(json.loads, (root / "journal.jsonl").read_text().splitlines()) if e.get("event") == kind]


def test_nsga2_trains_the_budget_in_trials_of_the_chosen_length(nsga2_run):
    summary = json.loads((nsga2_run / "summary.json").read_text())
    assert summary["member_steps"] == summary["budget_member_steps"] == 4 * 4
    assert summary["trials"] == summary["trials_completed"] == 16 // 2 and summary["nsga2"]["trial_steps"] == 2
    trained = events(nsga2_run, "member_trained")
    assert len(trained) == 16 and all(sum(1 for e in trained if e["uid"] == t) == 2 for t in range(8))


def test_nsga2_tells_optuna_every_objective_of_a_finished_trial(nsga2_run):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(nsga2_run / "optuna-study.log")))
    study = optuna.load_study(study_name="pbtnas-nsga2-s2", storage=storage)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    last = {e["uid"]: e["objectives"] for e in events(nsga2_run, "member_trained") if e["step"] == 1}
    trials = study.get_trials()
    assert len(trials) == 8 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    for t in trials:
        assert t.values == [last[t.number]["fitness"], last[t.number]["params"]]
    # the first generation is the run's stratified population, the later ones NSGA-II's
    sources = [e["source"] for e in events(nsga2_run, "trial_started")]
    assert sources == ["stratified"] * 4 + ["nsga2"] * 4


def test_nsga2_summary_has_the_front_every_tool_reads(nsga2_run, capsys):
    summary = json.loads((nsga2_run / "summary.json").read_text())
    values = [e["objectives"] for e in events(nsga2_run, "member_trained")]
    front = {(v["fitness"], v["params"]) for v in (values[i] for i in pareto_front(values, parse_objectives(OBJECTIVES)))}
    assert {(m["objectives"]["fitness"], m["objectives"]["params"]) for m in summary["pareto_front"]} == front
    assert [h["step"] for h in summary["hypervolume"]] == [0, 1, 2, 3]
    assert main(["status", str(nsga2_run)]) == 0
    assert f"Pareto front: {len(summary['pareto_front'])} member(s)" in capsys.readouterr().out


def test_nsga2_with_constraints_puts_only_feasible_trials_on_its_front(tmp_path):
    """``params>=190`` makes infeasible the small networks that lead the unconstrained front: once a
    feasible trial was seen, the front is the Pareto filter of the feasible evaluations alone."""
    make_runner(config(algorithm="nsga2", nsga2_trial_steps=2, constraints=["params>=190"]), tmp_path / "run", progress=False).start().run()
    summary = json.loads((tmp_path / "run/summary.json").read_text())
    values = [e["objectives"] for e in events(tmp_path / "run", "member_trained")]
    objectives = parse_objectives(OBJECTIVES)
    unconstrained = [values[i] for i in pareto_front(values, objectives)]
    assert any(v["params"] < 190 for v in unconstrained)  # without the constraint, infeasible ones would lead
    feasible = [v for v in values if v["params"] >= 190]
    expected = {(v["fitness"], v["params"]) for v in (feasible[i] for i in pareto_front(feasible, objectives))}
    front = summary["pareto_front"]
    assert front and all(m["feasible"] and m["objectives"]["params"] >= 190 for m in front)
    assert {(m["objectives"]["fitness"], m["objectives"]["params"]) for m in front} == expected


def test_random_search_with_objectives_keeps_the_front_of_its_members(tmp_path):
    make_runner(config(algorithm="random"), tmp_path / "run", progress=False).start().run()
    summary = json.loads((tmp_path / "run/summary.json").read_text())
    values = [e["objectives"] for e in events(tmp_path / "run", "member_trained")]
    front = {(v["fitness"], v["params"]) for v in (values[i] for i in pareto_front(values, parse_objectives(OBJECTIVES)))}
    assert {(m["objectives"]["fitness"], m["objectives"]["params"]) for m in summary["pareto_front"]} == front
    assert len(values) == 4 * 4  # population x steps member steps, like every algorithm


def test_trial_length_defaults_to_a_quarter_of_the_steps_and_is_bounded():
    from pbtnas.engine.nsga2 import trial_steps

    assert trial_steps(config(algorithm="nsga2", steps=10)) == 2
    assert trial_steps(config(algorithm="nsga2", steps=3)) == 1
    assert trial_steps(config(algorithm="nsga2", steps=10, nsga2_trial_steps=10)) == 10
    with pytest.raises(ConfigError, match=r"nsga2_trial_steps must lie in \[0, steps=4\]"):
        config(algorithm="nsga2", nsga2_trial_steps=5)
