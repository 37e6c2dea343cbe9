"""algorithm bohb on a small local Ray: trials in parallel on Ray workers, the budget kept exactly."""

import os

import pytest

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
pytest.importorskip("ray")
pytest.importorskip("optuna")

from pbtnas.config import config_from_dict  # noqa: E402
from pbtnas.engine.runner import make_runner  # noqa: E402
from pbtnas.rundir.store import RunStore  # noqa: E402

SIM = {"name": "simulated", "layers": 3, "width": 4, "step_seconds": 0.2, "unevenness": 1.0, "batches_per_step": 2}


@pytest.mark.slow
def test_bohb_trials_train_on_ray_workers_within_the_budget(local_ray, tmp_path):
    config = config_from_dict(
        {
            "task": dict(SIM),
            "population": 4,
            "steps": 4,
            "seed": 1,
            "backend": "ray",
            "cpus_per_member": 1.0,
            "algorithm": "bohb",
            "bohb_eta": 2,
            "loggers": ["none"],
        }
    )
    summary = make_runner(config, tmp_path / "r", progress=False).start().run()
    events = RunStore(tmp_path / "r").events()
    trained = {(e["trial"], e["step"]) for e in events if e["event"] == "member_trained"}
    assert summary["member_steps"] == 16 == len(trained) and summary["final_metric"] is not None
    assert len({e["worker"] for e in events if e["event"] == "member_trained"}) >= 2  # two trials at once
    assert summary["trials"] == summary["trials_completed"] + summary["trials_pruned"] + summary["trials_stopped"]
