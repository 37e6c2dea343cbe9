"""On Ray, an actor's death charges only the job it was running; the job queued behind it on that
actor goes back to the queue free (deterministic fault injection: the actor kills itself)."""

import os

import pytest

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
pytest.importorskip("ray")

from run_helpers import fitness_trace  # noqa: E402

from pbtnas.backends.ray_backend import RayBackend  # noqa: E402
from pbtnas.config import config_from_dict  # noqa: E402
from pbtnas.engine.runner import Runner  # noqa: E402
from pbtnas.rundir.store import RunStore  # noqa: E402


@pytest.mark.slow
def test_a_dead_actor_charges_only_its_running_job(local_ray, tmp_path, monkeypatch):
    from conftest import TINY_TASK

    def config(**kw):
        # no lookahead: every step's 4 jobs are handed out together, 2 per actor (queue depth 2)
        return config_from_dict({"task": dict(TINY_TASK), "population": 4, "steps": 3, "seed": 3, "lookahead": False, **kw})

    ref = Runner(config(backend="inprocess"), tmp_path / "ref", progress=False).start().run()
    # slots 0 and 1 (uids 0 and 4 at steps 1 and 2) run first on the two actors, slots 2 and 3 wait
    # behind them on the same actors
    monkeypatch.setenv("PBTNAS_FAULT", "worker:4:1:trained:kill,worker:0:2:start:kill")
    backend = RayBackend(cpus_per_member=1.0, max_workers=2)
    try:
        summary = Runner(config(backend="ray"), tmp_path / "ray", backend=backend, progress=False).start().run()
    finally:
        backend.close()
    store = RunStore(tmp_path / "ray")
    retries = sorted((e["uid"], e["step"], e["attempt"]) for e in store.iter_events("member_retry"))
    assert retries == [(0, 2, 2), (4, 1, 2)]
    assert list(store.iter_events("member_failed")) == []
    assert backend.requeued >= 1  # a job queued behind a dying actor went back to the queue, uncharged
    assert fitness_trace(tmp_path / "ray") == fitness_trace(tmp_path / "ref")
    assert summary["final_metric"] == ref["final_metric"]
