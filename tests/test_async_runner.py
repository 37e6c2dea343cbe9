"""Asynchronous PBT-NAS end to end on the simulated task (in-process: deterministic order)."""

import json

import pytest
from run_helpers import StopAfterResults, fitness_trace

from pbtnas.backends import InProcessBackend
from pbtnas.backends.base import TrainResult
from pbtnas.config import config_from_dict
from pbtnas.engine.runner import Runner
from pbtnas.rundir.store import RunStore, load_member

TASK = {"name": "simulated", "layers": 3, "width": 4, "step_seconds": 0.0, "batches_per_step": 2}


def make_config(**overrides):
    data = {"task": dict(TASK), "population": 6, "steps": 4, "seed": 4, "backend": "inprocess", "mode": "async"}
    data.update(overrides)
    return config_from_dict(data)


def children(run_dir):
    return [(e["step"], e["slot"], e["uid"], tuple(e["parents"])) for e in RunStore(run_dir).iter_events("child_created")]


class FlakyBackend(InProcessBackend):
    """Loses the worker of chosen (uid, step) jobs on their first ``times`` attempts."""

    def __init__(self, lose, times=1):
        super().__init__()
        self.lose, self.times = set(lose), times

    def next_result(self):
        job = self._queue.popleft()
        if (job.uid, job.step) in self.lose and job.attempt <= self.times:
            return TrainResult(
                job.slot,
                job.uid,
                job.step,
                float("-inf"),
                {},
                0.0,
                job.state_out,
                error="worker process died (test)",
                attempt=job.attempt,
                lost_worker=True,
            )
        from pbtnas.backends.worker import execute_job

        return execute_job(job)


def test_async_run_trains_every_slot_and_replaces_at_once(tmp_path):
    summary = Runner(make_config(), tmp_path / "a", progress=False).start().run()
    assert summary["steps_done"] == 4
    events = fitness_trace(tmp_path / "a")
    assert len(events) == 6 * 4
    for slot in range(6):
        assert sorted(s for s, sl, _, _ in events if sl == slot) == list(range(4))
    kids = children(tmp_path / "a")
    assert kids and all(step < 3 for step, *_ in kids)
    manifest = json.loads((tmp_path / "a/population.json").read_text())
    assert manifest["mode"] == "async" and manifest["slot_steps"] == [4] * 6 and manifest["finished"]
    assert len(list(RunStore(tmp_path / "a").iter_events("step_done"))) == 4


def test_async_same_seed_same_run_and_resume_after_crash(tmp_path):
    Runner(make_config(), tmp_path / "a", progress=False).start().run()
    crashed = Runner(make_config(), tmp_path / "b", observers=[StopAfterResults(15)], progress=False).start()
    with pytest.raises(KeyboardInterrupt):
        crashed.run()
    manifest = json.loads((tmp_path / "b/population.json").read_text())
    assert sum(manifest["slot_steps"]) == 15  # every result handed to observers was committed
    resumed = Runner.resume(tmp_path / "b", progress=False)
    summary = resumed.run()
    assert fitness_trace(tmp_path / "b") == fitness_trace(tmp_path / "a")
    assert children(tmp_path / "b") == children(tmp_path / "a")
    assert summary["best_genome"] == json.loads((tmp_path / "a/summary.json").read_text())["best_genome"]


def test_async_lost_worker_is_retried_and_journaled(tmp_path):
    Runner(make_config(), tmp_path / "a", progress=False).start().run()
    runner = Runner(make_config(), tmp_path / "b", backend=FlakyBackend({(2, 1), (5, 2)}), progress=False)
    runner.start().run()
    retries = list(RunStore(tmp_path / "b").iter_events("member_retry"))
    assert (2, 1, 2) in [(e["uid"], e["step"], e["attempt"]) for e in retries]
    # a retried step runs from the same checkpoint with the same seeds: same fitness
    a = {(s, u): f for s, _, u, f in fitness_trace(tmp_path / "a")}
    b = {(s, u): f for s, _, u, f in fitness_trace(tmp_path / "b")}
    for e in retries:
        assert b[(e["step"], e["uid"])] == a[(e["step"], e["uid"])]


def test_async_member_out_of_retries_gets_minus_inf_and_is_replaced(tmp_path):
    backend = FlakyBackend({(3, 1)}, times=10)
    Runner(make_config(max_retries=1), tmp_path / "r", backend=backend, progress=False).start().run()
    store = RunStore(tmp_path / "r")
    assert len(list(store.iter_events("member_retry"))) == 1
    assert [(e["uid"], e["step"], e["attempts"]) for e in store.iter_events("member_failed")] == [(3, 1, 2)]
    failed = [e for e in store.iter_events("member_trained") if e["uid"] == 3 and e["step"] == 1]
    assert failed[0]["fitness"] == float("-inf") and "died" in failed[0]["error"]
    replaced = [e for e in store.iter_events("member_replaced") if e["old_uid"] == 3]
    assert replaced and replaced[0]["step"] == 1
    genome, state, meta = load_member(tmp_path / "r" / json.loads((tmp_path / "r/population.json").read_text())["members"][3]["checkpoint"])
    assert "model" in state.models


def test_async_resume_refuses_a_sync_run(tmp_path):
    from pbtnas.engine.runner import Runner
    from pbtnas.errors import PbtnasError

    Runner(make_config(mode="sync", steps=1), tmp_path / "s", progress=False).start().run()
    with pytest.raises(PbtnasError, match="synchronous"):  # the schedule follows the (unchecked) override
        Runner.resume(tmp_path / "s", overrides={"mode": "async"}, progress=False)


def test_cli_async_mode(tmp_path):
    from pbtnas.cli import main

    out = tmp_path / "cli"
    assert (
        main(
            [
                "run",
                "simulated",
                "--mode",
                "async",
                "--backend",
                "inprocess",
                "--population",
                "4",
                "--steps",
                "2",
                "--set",
                "task.step_seconds=0",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    assert json.loads((out / "population.json").read_text())["mode"] == "async"
    assert main(["resume", str(out), "--quiet"]) == 0
