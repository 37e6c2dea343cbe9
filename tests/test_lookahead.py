"""Synchronous mode without an idle barrier: while the slowest members finish a step, idle
workers start the next step of members sure to survive. Results equal those without it."""

import pytest

from pbtnas.config import config_from_dict
from pbtnas.engine.runner import make_runner
from pbtnas.rundir.store import RunStore

SIM = {"name": "simulated", "layers": 3, "width": 4, "step_seconds": 0.3, "unevenness": 1.8, "batches_per_step": 2}


def run(tmp_path, name, **overrides):
    config = config_from_dict({"task": SIM, "population": 8, "steps": 3, "seed": 5, "backend": "local", "workers": 2, **overrides})
    make_runner(config, tmp_path / name, progress=False).start().run()
    events = list(RunStore(tmp_path / name).iter_events("member_trained"))
    return [(e["step"], e["slot"], e["uid"], e["fitness"]) for e in events], events


@pytest.mark.parametrize("algorithm", ["pbtnas", pytest.param("random", marks=pytest.mark.slow)])
def test_lookahead_changes_nothing_but_when_jobs_start(tmp_path, algorithm):
    # 6 members on 2 workers: uneven enough to leave workers idle, 18 member steps a run
    with_ahead, events = run(tmp_path, "ahead", algorithm=algorithm, population=6)
    without, _ = run(tmp_path, "barrier", algorithm=algorithm, population=6, lookahead=False)
    assert with_ahead == without
    early = [e for e in events if e.get("started_early")]
    assert early, "uneven step times leave idle workers: some jobs must start early"
    if algorithm == "pbtnas":  # an early job never belongs to a member that is replaced afterwards
        replaced = {(e["step"], e["old_uid"]) for e in RunStore(tmp_path / "ahead").iter_events("member_replaced")}
        assert not any((e["step"] - 1, e["uid"]) in replaced for e in early)


def test_a_single_in_process_worker_never_starts_early(tmp_path):
    # nothing is idle while the one worker trains, so nothing can start ahead (random-sp's refresh
    # ahead on idle workers is tested in test_dispatch_order.py)
    # (step times are not the point here: no sleeping)
    _, events = run(tmp_path, "rsp", algorithm="random-sp", backend="inprocess", task={**SIM, "step_seconds": 0.0})
    assert not any(e.get("started_early") for e in events)
