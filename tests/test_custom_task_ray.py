"""A user's task module reaches Ray workers (which do not share the driver's sys.path) and gives
the same result as the in-process backend."""

import os

import pytest

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
pytest.importorskip("ray")

import pbtnas  # noqa: E402
from pbtnas.rundir.store import RunStore  # noqa: E402


def _trace(run_dir):
    return [(e["step"], e["uid"], e["fitness"]) for e in RunStore(run_dir).iter_events("member_trained")]


@pytest.mark.slow
def test_custom_task_module_runs_on_ray_like_in_process(local_ray, tmp_path):
    import custom_tasks  # noqa: F401  (the driver finds it on its sys.path; Ray workers are told where)

    config = {"task": {"name": "custom_tasks:Good"}, "population": 4, "steps": 2}
    on_ray = pbtnas.run(dict(config), out=str(tmp_path / "ray"), backend="ray", ray_address="auto", cpus_per_member=0.5)
    local = pbtnas.run(dict(config), out=str(tmp_path / "local"), backend="inprocess")
    assert _trace(tmp_path / "ray") == _trace(tmp_path / "local")
    assert on_ray["final_metric"] == local["final_metric"]
