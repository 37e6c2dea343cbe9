"""The Ray backend on a small local Ray (2 CPUs, fractional CPUs per member)."""

import os
import signal
import subprocess
import sys

import pytest

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
pytest.importorskip("ray")

import torch  # noqa: E402
from run_helpers import fitness_trace  # noqa: E402

from pbtnas.backends.ray_backend import RayBackend  # noqa: E402
from pbtnas.config import config_from_dict  # noqa: E402
from pbtnas.engine.runner import Runner  # noqa: E402
from pbtnas.errors import PbtnasError  # noqa: E402
from pbtnas.rundir.store import RunStore, load_member  # noqa: E402

SIM = {"name": "simulated", "layers": 3, "width": 4, "step_seconds": 1.0, "unevenness": 1.0, "batches_per_step": 2}


def same_final_weights(a, b):
    wa, wb = load_member(a / "final/member.pt")[1], load_member(b / "final/member.pt")[1]
    return all(torch.equal(t, wb.models["model"][k]) for k, t in wa.models["model"].items())


@pytest.fixture(scope="module")
def inprocess_reference(tmp_path_factory):
    from conftest import TINY_TASK

    def config(**kw):
        data = {"task": dict(TINY_TASK), "population": 4, "steps": 3, "seed": 3, "backend": "inprocess"}
        data.update(kw)
        return config_from_dict(data)

    root = tmp_path_factory.mktemp("ref")
    summary = Runner(config(), root / "inprocess", progress=False).start().run()
    return config, root / "inprocess", summary


def test_same_seed_same_population_and_best_network_as_local(local_ray, inprocess_reference, tmp_path):
    config, ref_dir, ref = inprocess_reference
    summary = Runner(config(backend="ray", cpus_per_member=1.0), tmp_path / "ray", progress=False).start().run()
    assert fitness_trace(tmp_path / "ray") == fitness_trace(ref_dir)
    assert summary["best_genome"] == ref["best_genome"] and summary["final_metric"] == ref["final_metric"]
    assert same_final_weights(tmp_path / "ray", ref_dir)
    workers = {e["worker"] for e in RunStore(tmp_path / "ray").iter_events("member_trained")}
    assert all(w.rsplit(":", 1)[1] != str(os.getpid()) for w in workers)  # trained in Ray workers


@pytest.mark.slow
def test_shared_storage_gives_the_same_result_and_is_cleaned(local_ray, inprocess_reference, tmp_path):
    config, ref_dir, ref = inprocess_reference
    shared = tmp_path / "shared"
    url = "file://" + str(shared)  # goes through fsspec
    summary = Runner(config(backend="ray", cpus_per_member=0.5, storage=url), tmp_path / "ray", progress=False).start().run()
    assert fitness_trace(tmp_path / "ray") == fitness_trace(ref_dir) and summary["best_genome"] == ref["best_genome"]
    assert same_final_weights(tmp_path / "ray", ref_dir)
    leftovers = [p for p in shared.rglob("*") if p.is_file()]
    assert leftovers == []


class KillOneWorkerMidStep:
    """Observer: at the first result of step 1, SIGKILL the process of another member still training."""

    def __init__(self, backend):
        self.backend, self.killed = backend, None

    def on_member_result(self, step, member, result):
        if self.killed is None and step >= 1:
            running = self.backend.running_workers()
            if running:
                uid, pid = sorted(running.items())[0]
                os.kill(pid, signal.SIGKILL)
                self.killed = (uid, step, pid)


def test_killed_worker_step_is_retried_and_the_run_ends_the_same(local_ray, tmp_path):
    data = {"task": dict(SIM), "population": 4, "steps": 2, "seed": 11, "backend": "inprocess"}
    reference = Runner(config_from_dict(data), tmp_path / "ref", progress=False).start().run()
    backend = RayBackend(cpus_per_member=1.0)  # 2 slots for 4 members: a queue, and fewer worker starts
    killer = KillOneWorkerMidStep(backend)
    runner = Runner(config_from_dict({**data, "backend": "ray"}), tmp_path / "ray", backend=backend, observers=[killer], progress=False)
    try:
        summary = runner.start().run()
    finally:
        backend.close()
    assert killer.killed is not None, "no member was running when the first step-1 result arrived"
    uid, step, pid = killer.killed
    retries = list(RunStore(tmp_path / "ray").iter_events("member_retry"))
    # the killed member's step (and any job queued behind it on that worker) was retried, journaled
    assert (uid, step, 2) in [(e["uid"], e["step"], e["attempt"]) for e in retries]
    assert all(e["attempt"] == 2 and "lost" in e["reason"] for e in retries)
    redone = [e for e in RunStore(tmp_path / "ray").iter_events("member_trained") if e["uid"] == uid and e["step"] == step]
    assert redone[0]["attempt"] == 2 and not redone[0]["worker"].endswith(f":{pid}")
    assert fitness_trace(tmp_path / "ray") == fitness_trace(tmp_path / "ref")
    assert summary["best_genome"] == reference["best_genome"] and summary["final_metric"] == reference["final_metric"]


def test_missing_resources_are_named_before_training(local_ray):
    with pytest.raises(PbtnasError, match="0 GPUs but gpus_per_member is 0.5"):
        RayBackend(cpus_per_member=0.5, gpus_per_member=0.5)
    with pytest.raises(PbtnasError, match="CPUs but cpus_per_member is 64"):
        RayBackend(cpus_per_member=64)


@pytest.mark.slow
def test_async_mode_on_ray(local_ray, tmp_path):

    data = {"task": {**SIM, "step_seconds": 0.3}, "population": 6, "steps": 3, "seed": 2, "backend": "ray", "cpus_per_member": 0.25, "mode": "async"}
    summary = Runner(config_from_dict(data), tmp_path / "a", progress=False).start().run()
    assert summary["steps_done"] == 3 and len(fitness_trace(tmp_path / "a")) == 18


def _cli(tmp_path, *extra):
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    cmd = [
        sys.executable,
        "-m",
        "pbtnas",
        "run",
        "simulated",
        "--population",
        "4",
        "--steps",
        "1",
        "--backend",
        "ray",
        "--out",
        str(tmp_path / "run"),
        "--quiet",
        *extra,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)


def test_unreachable_address_is_one_clear_error(tmp_path):
    proc = _cli(tmp_path, "--address", "127.0.0.1:9")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: cannot reach the Ray cluster at '127.0.0.1:9'")
    assert not list(RunStore(tmp_path / "run").iter_events("member_trained"))


def test_unwritable_storage_is_one_clear_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    proc = _cli(tmp_path, "--storage", str(blocker / "states"))
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: storage") and "is not writable" in last
    assert not list(RunStore(tmp_path / "run").iter_events("member_trained"))
