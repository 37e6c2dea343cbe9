"""The algorithm registry (pbtnas.search.algorithms.ALGORITHMS): every registered algorithm builds
its operator from a config and makes children (or refreshes, or nothing) as the journal records
them; an algorithm registered in a test runs end to end with no other change."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from pbtnas.analysis.compare import parse_algorithms
from pbtnas.cli import main
from pbtnas.config import ALGORITHMS as CONFIG_ALGORITHMS
from pbtnas.config import config_from_dict
from pbtnas.rundir.records import build_record
from pbtnas.rundir.store import RunStore
from pbtnas.search.algorithms import ALGORITHMS, Algorithm, ChildOperator, Mixing, Operator, build_operator
from pbtnas.search.operators import ChildRecord
from pbtnas.search.schedules import SCHEDULES, schedule_name
from pbtnas.tasks import build_task

SIMULATED = {"name": "simulated", "layers": 3, "width": 4, "step_seconds": 0.0, "batches_per_step": 2}
STEPS = 4


def config_for(algorithm: str, **overrides):
    return config_from_dict({"task": dict(SIMULATED), "algorithm": algorithm, "population": 4, "steps": STEPS, "backend": "inprocess", **overrides})


@pytest.fixture(scope="module")
def parents():
    """The simulated task and two members of different architectures, as a schedule loads them."""
    task = build_task(dict(SIMULATED))
    first, second = task.space.stratified_population(2, np.random.default_rng(0))
    return task, (first, task.init_state(first, 1)), (second, task.init_state(second, 2))


def tensors_of(state) -> dict[str, torch.Tensor]:
    return {f"{key}/{name}": t for key, sd in state.models.items() for name, t in sd.items()}


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_every_registered_algorithm_builds_and_makes_what_the_journal_records(name, parents):
    task, primary, donor = parents
    entry = ALGORITHMS[name]
    assert entry.description and name in CONFIG_ALGORITHMS  # the config's choices are the registry
    operator = build_operator(config_for(name, **({"population": 6, "steps": 12} if name == "bohb" else {})))
    assert isinstance(operator, entry.operator)
    if entry.schedule is not None:
        assert entry.schedule in SCHEDULES and schedule_name(name, "sync") == entry.schedule
    exploits = [operator.exploits_after(step, STEPS, 1) for step in range(STEPS)]
    assert any(exploits) == entry.operator.makes_children
    rng = np.random.default_rng(7)
    before = {k: t.clone() for k, t in tensors_of(primary[1]).items()}
    if entry.operator.makes_children:
        genome, state, record = operator.make_child(task, primary, donor, rng)
        assert task.space.validate(genome) == genome and set(state.models) == set(primary[1].models)
        record.primary, record.donor = 0, (None if record.single_parent else 1)
        parents_ = [0] if record.donor is None else [0, 1]
        event = build_record(
            "child_created", {"step": 0, "slot": 2, "uid": 4, "parents": parents_, "replaced_uid": 2, "genome": genome, **record.to_dict()}
        )
        assert event.operator == record.operator  # strict: a field the journal does not declare fails above
    else:
        with pytest.raises(RuntimeError, match="makes no children"):
            operator.make_child(task, primary, donor, rng)
    if operator.refreshes_after(0):
        state, record = operator.refresh(task, primary[0], primary[1], rng)
        build_record("member_refreshed", {"step": 0, "slot": 0, "uid": 0, **record.to_dict()})
        assert any(not torch.equal(t, before[k]) for k, t in tensors_of(state).items())
    else:
        with pytest.raises(RuntimeError, match="refreshes no member"):
            operator.refresh(task, primary[0], primary[1], rng)
    assert all(torch.equal(t, before[k]) for k, t in tensors_of(primary[1]).items())  # parents are read, never edited


@pytest.mark.parametrize(("name", "lam", "gam"), [("pbtnas", 0.3, 0.2), ("sp-1-0", 1.0, 0.0), ("sp-0-1", 0.0, 1.0)])
def test_the_sp_ablations_pin_lambda_and_gamma_whatever_the_config_says(name, lam, gam):
    operator = build_operator(config_for(name, sp_lambda=0.3, sp_gamma=0.2, p_donor=0.5))
    assert isinstance(operator, Mixing) and (operator.lam, operator.gam, operator.p_donor) == (lam, gam, 0.5)


@dataclass(frozen=True)
class CopyPrimary(ChildOperator):
    """A test algorithm: the child is an exact copy of the primary parent."""

    def make_child(self, task, primary, donor, rng):
        return dict(primary[0]), primary[1].clone(), ChildRecord(operator="copy", seed=int(rng.integers(2**31 - 1)), single_parent=True)


def test_an_algorithm_registered_in_one_line_runs_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(ALGORITHMS, "copy-primary", Algorithm("test: children are copies of their primary parent", CopyPrimary))
    assert parse_algorithms("pbtnas,copy-primary") == ["pbtnas", "copy-primary"]  # pbtnas compare --algorithms
    out = tmp_path / "run"
    sets = [a for key, value in SIMULATED.items() if key != "name" for a in ("--set", f"task.{key}={value}")]
    argv = ["run", "simulated", *sets, "--algorithm", "copy-primary", "--population", "4", "--steps", "3", "--backend", "inprocess"]
    assert main([*argv, "--quiet", "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["steps_done"] == 3
    store = RunStore(out)
    children = list(store.iter_events("child_created"))
    assert children and all(e["operator"] == "copy" and e["parents"] == [e["primary"]] and e["donor"] is None for e in children)
    genomes = {e["uid"]: e["genome"] for e in store.iter_events("member_created")}
    assert all(e["genome"] == genomes.get(e["primary"], e["genome"]) for e in children)


def test_the_base_operator_changes_nothing():
    operator = Operator()
    assert not any(operator.exploits_after(step, 10, 2) for step in range(10)) and not operator.refreshes_after(0)


def test_the_readme_table_names_every_registered_algorithm():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("| `")]
    assert all(any(f"`{name}`" in row for row in rows) for name in ALGORITHMS)


def test_what_an_algorithms_schedule_needs_comes_from_the_schedule_registry(monkeypatch):
    """The Hyperband budget check, the report's trials section and compare's package check follow
    the schedule an algorithm brings (its registry entry), not the algorithm's name."""
    from pbtnas.analysis import compare
    from pbtnas.errors import ConfigError
    from pbtnas.search.schedules import schedule_of_config

    monkeypatch.setitem(ALGORITHMS, "bohb-again", Algorithm("test: bohb's schedule under another name", Operator, schedule="bohb"))
    with pytest.raises(ConfigError, match="smaller than one Hyperband bracket"):
        config_for("bohb-again", steps=16)  # 4 x 16 member steps cannot pay for one bracket at eta 3
    assert config_for("nsga2", steps=16).steps == 16  # nsga2's trials have no rungs: no such check
    assert schedule_of_config({"algorithm": "bohb-again"}).hyperband and not schedule_of_config({"algorithm": "nsga2"}).hyperband
    assert schedule_of_config({"algorithm": "pbtnas", "mode": "nonsense"}) is None
    required = []
    monkeypatch.setattr(compare, "require", lambda module, extra: required.append((module, extra)))
    compare._require_schedules(["pbtnas", "random", "bohb-again", "nsga2"])
    assert required == [("optuna", "bohb"), ("optuna", "bohb")]
