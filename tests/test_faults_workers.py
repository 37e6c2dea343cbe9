"""A worker that dies costs only the job it was running (deterministic fault injection, no timing).

``PBTNAS_FAULT=worker:UID:STEP:PHASE:kill`` makes the worker running that member step send itself
SIGKILL (first attempt only); local workers inherit the variable when they are spawned.
"""

import pytest
from run_helpers import fitness_trace

from pbtnas.backends import LocalBackend
from pbtnas.engine.runner import Runner
from pbtnas.rundir.store import RunStore


def events(run_dir, kind):
    return list(RunStore(run_dir).iter_events(kind))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    from conftest import TINY_TASK

    from pbtnas.config import config_from_dict

    run_dir = tmp_path_factory.mktemp("ref") / "inprocess"
    config = config_from_dict({"task": dict(TINY_TASK), "population": 4, "steps": 3, "seed": 3, "backend": "inprocess"})
    summary = Runner(config, run_dir, progress=False).start().run()
    return run_dir, summary


def run_local(tiny_config, run_dir, monkeypatch, fault, **kw):
    monkeypatch.setenv("PBTNAS_FAULT", fault)
    backend = LocalBackend(2)
    try:
        summary = Runner(tiny_config(backend="local", workers=2, **kw), run_dir, backend=backend, progress=False).start().run()
    finally:
        backend.close()
    return summary, backend


def test_a_killed_worker_charges_only_its_own_job(tiny_config, tmp_path, monkeypatch, reference):
    ref_dir, ref = reference
    summary, backend = run_local(tiny_config, tmp_path / "r", monkeypatch, "worker:4:1:trained:kill")
    retries = events(tmp_path / "r", "member_retry")
    assert [(e["uid"], e["step"], e["attempt"]) for e in retries] == [(4, 1, 2)]
    assert "killed by signal 9" in retries[0]["reason"]
    assert events(tmp_path / "r", "member_failed") == []
    assert backend.replaced == 1
    # nobody else lost anything: the result is the uninterrupted one
    assert fitness_trace(tmp_path / "r") == fitness_trace(ref_dir)
    assert summary["best_genome"] == ref["best_genome"] and summary["final_metric"] == ref["final_metric"]


@pytest.mark.slow  # one and two deaths run by default
def test_three_worker_deaths_in_one_step_charge_three_jobs_at_every_phase(tiny_config, tmp_path, monkeypatch, reference):
    ref_dir, ref = reference
    fault = "worker:0:1:start:kill,worker:4:1:trained:kill,worker:3:1:saved:kill"
    summary, backend = run_local(tiny_config, tmp_path / "r", monkeypatch, fault)
    retries = events(tmp_path / "r", "member_retry")
    assert sorted(e["uid"] for e in retries) == [0, 3, 4] and all(e["attempt"] == 2 for e in retries)
    assert events(tmp_path / "r", "member_failed") == [] and backend.replaced == 3
    assert fitness_trace(tmp_path / "r") == fitness_trace(ref_dir)
    assert summary["final_metric"] == ref["final_metric"]


def test_without_retries_only_the_dead_workers_member_fails(tiny_config, tmp_path, monkeypatch):
    summary, _ = run_local(tiny_config, tmp_path / "r", monkeypatch, "worker:1:0:trained:kill", max_retries=0)
    failed = events(tmp_path / "r", "member_failed")
    assert [(e["uid"], e["step"]) for e in failed] == [(1, 0)]
    step0 = {e["uid"]: e["fitness"] for e in events(tmp_path / "r", "member_trained") if e["step"] == 0}
    assert step0[1] == float("-inf") and all(f > float("-inf") for uid, f in step0.items() if uid != 1)
    assert summary["finished"]


def test_a_crash_the_worker_survives_is_the_members_own_failure(tiny_config, tmp_path, monkeypatch):
    _, backend = run_local(tiny_config, tmp_path / "r", monkeypatch, "worker:2:0:trained:raise")
    bad = [e for e in events(tmp_path / "r", "member_trained") if e.get("error")]
    assert [(e["uid"], e["step"]) for e in bad] == [(2, 0)] and "injected fault" in bad[0]["error"]
    assert events(tmp_path / "r", "member_retry") == [] and backend.replaced == 0
