"""Losing a Ray node mid-run. A two-node cluster on 127.0.0.1 (head and second node, 1 CPU each,
0.25 CPU per member: 8 slots); right after step 2 is committed an observer kills every process of
the second node (raylet and workers, as a lost machine). The members it was running are retried on
the head, the pool shrinks to the 4 slots the head holds (journaled as ``pool_resized`` and said on
the console) and the run ends with the result of the run that lost nothing; so does ``pbtnas
resume`` of a run interrupted after the loss, on the surviving head. Before the fix the run froze
at the next step, waiting on actors the head could not place. Slow: starts a cluster. One fast
test checks the seam the backend reports through (``Backend.emit``, journaled by the runner)."""

import json
import os
import subprocess
import sys

import pytest
from run_helpers import StopAfter, fitness_trace

from pbtnas.backends import InProcessBackend
from pbtnas.config import config_from_dict
from pbtnas.engine.runner import Runner
from pbtnas.rundir.records import PoolResized
from pbtnas.rundir.store import RunStore

SEARCH = {"population": 8, "steps": 6, "seed": 5}
NODE = {"num_cpus": 1, "node_ip_address": "127.0.0.1"}


class RemoveNodeAfter:
    """Observer: kills every process of ``node`` right after ``step`` was committed."""

    def __init__(self, cluster, node, step):
        self.cluster, self.node, self.step = cluster, node, step

    def on_step_end(self, step, runner):
        if step == self.step:
            self.cluster.remove_node(self.node, allow_graceful=False)  # returns once they are all dead


class ShrinkingBackend(InProcessBackend):
    """In-process backend that reports one pool change before its third result."""

    def __init__(self):
        super().__init__()
        self.results = 0

    def next_result(self):
        self.results += 1
        if self.results == 3:
            self.emit(PoolResized(old=4, new=2, reason="a test"), message="Ray pool 4 -> 2 workers: a test")
        return super().next_result()


def test_backend_events_are_journaled_and_shown(tmp_path, capsys):
    data = {"task": {"name": "simulated", "step_seconds": 0.0}, "population": 4, "steps": 2, "seed": 1, "backend": "inprocess"}
    Runner(config_from_dict(data), tmp_path / "run", backend=ShrinkingBackend()).start().run()
    events = [e["event"] for e in RunStore(tmp_path / "run").events()]
    assert events.count("pool_resized") == 1 and events.index("pool_resized") < events.index("step_done")  # when it happened
    resized = next(RunStore(tmp_path / "run").iter_events("pool_resized"))
    assert {k: resized[k] for k in ("old", "new", "reason")} == {"old": 4, "new": 2, "reason": "a test"}
    assert "Ray pool 4 -> 2 workers: a test" in capsys.readouterr().err
    assert InProcessBackend().emit(PoolResized(old=1, new=0, reason="no listener")) is None  # a backend on its own


@pytest.fixture(scope="module")
def cluster():
    # a multi-node cluster on one machine, without the token Ray asks for by default
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args=dict(NODE))
    ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield cluster
    ray.shutdown()
    cluster.shutdown()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The same search, nothing lost (in-process: backends do not change results)."""
    data = {"task": {"name": "simulated", "step_seconds": 0.0}, "backend": "inprocess", **SEARCH}
    out = tmp_path_factory.mktemp("ref") / "run"
    return Runner(config_from_dict(data), out, progress=False).start().run(), out


def ray_config(cluster, step_seconds=0.5):
    return config_from_dict(
        {
            "task": {"name": "simulated", "step_seconds": step_seconds},
            "backend": "ray",
            "ray_address": cluster.address,
            "cpus_per_member": 0.25,
            **SEARCH,
        }
    )


def add_second_node(cluster):
    node = cluster.add_node(**NODE)
    cluster.wait_for_nodes()
    return node


def assert_same_result(run_dir, summary, reference):
    ref_summary, ref_dir = reference
    assert fitness_trace(run_dir) == fitness_trace(ref_dir)
    for key in ("best_fitness", "best_uid", "best_genome", "final_metric"):
        assert summary[key] == ref_summary[key], key
    genomes = [[m["genome"] for m in RunStore(d).read_manifest()["members"]] for d in (run_dir, ref_dir)]
    assert genomes[0] == genomes[1]


def assert_node_loss_handled(run_dir):
    store = RunStore(run_dir)
    resized = list(store.iter_events("pool_resized"))
    assert [(e["old"], e["new"]) for e in resized] == [(8, 4)]
    assert "127.0.0.1" in resized[0]["reason"]
    # Charged: the job each of the second node's 4 actors was running (or had been handed before
    # its death was known: a step-3 job, or a step-4 one started early), once; its retry runs on
    # the head. Jobs queued behind on those actors went back free.
    retries = list(store.iter_events("member_retry"))
    assert 1 <= len(retries) <= 4
    assert {e["step"] for e in retries} <= {3, 4}
    assert len({e["uid"] for e in retries}) == len(retries)
    assert all(e["attempt"] == 2 and e["reason"].startswith("Ray worker lost") for e in retries)
    assert list(store.iter_events("member_failed")) == []


@pytest.mark.slow
def test_a_lost_node_shrinks_the_pool_and_the_run_ends_as_without_the_loss(cluster, reference, tmp_path, capsys):
    node = add_second_node(cluster)
    runner = Runner(ray_config(cluster), tmp_path / "run", observers=[RemoveNodeAfter(cluster, node, 2)])
    summary = runner.start().run()
    assert_node_loss_handled(tmp_path / "run")
    assert_same_result(tmp_path / "run", summary, reference)
    assert "Ray pool 8 -> 4 workers: node 127.0.0.1" in capsys.readouterr().err


@pytest.mark.slow
def test_resume_on_the_surviving_head_ends_as_without_the_loss(cluster, reference, tmp_path):
    node = add_second_node(cluster)
    observers = [RemoveNodeAfter(cluster, node, 2), StopAfter(3)]  # Ctrl-C once step 3 is committed
    with pytest.raises(KeyboardInterrupt):
        Runner(ray_config(cluster), tmp_path / "run", observers=observers, progress=False).start().run()
    assert RunStore(tmp_path / "run").read_manifest()["step_done"] == 3
    proc = subprocess.run(
        [sys.executable, "-m", "pbtnas", "resume", str(tmp_path / "run"), "--quiet"],
        env={**os.environ, "RAY_AUTH_MODE": "disabled"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert_node_loss_handled(tmp_path / "run")  # the resumed part, on the head alone, needed no resize
    summary = json.loads((tmp_path / "run/summary.json").read_text())
    assert_same_result(tmp_path / "run", summary, reference)


class AddNodeAfter:
    """Observer: starts a second node right after ``step`` was committed (returns once it is registered)."""

    def __init__(self, cluster, step):
        self.cluster, self.step, self.node = cluster, step, None

    def on_step_end(self, step, runner):
        if step == self.step:
            self.node = add_second_node(self.cluster)


@pytest.mark.slow
def test_a_node_that_joins_grows_the_pool(cluster, reference, tmp_path):
    # 2 s steps: the 3 steps left after the join take at least 12 s, beyond the backend's 5 s look
    config = ray_config(cluster, step_seconds=2.0)
    observer = AddNodeAfter(cluster, 2)
    try:
        summary = Runner(config, tmp_path / "run", observers=[observer], progress=False).start().run()
    finally:
        if observer.node is not None:
            cluster.remove_node(observer.node, allow_graceful=False)
    resized = list(RunStore(tmp_path / "run").iter_events("pool_resized"))
    assert [(e["old"], e["new"]) for e in resized] == [(4, 8)]
    assert "joined (4 slots)" in resized[0]["reason"]
    assert list(RunStore(tmp_path / "run").iter_events("member_retry")) == []
    assert_same_result(tmp_path / "run", summary, reference)


def hold_cpus(cluster, node_id, cpus):
    """An unrelated actor that takes ``cpus`` of one node (resources 'taken by something else')."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    @ray.remote
    class Holder:
        def ready(self):
            return True

    holder = Holder.options(num_cpus=cpus, scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False)).remote()
    ray.get(holder.ready.remote(), timeout=60)
    return holder


@pytest.mark.slow
def test_workers_that_cannot_be_placed_are_given_up_and_the_run_ends_the_same(cluster, reference, tmp_path):
    """Half of the head's CPU is held by another actor: the pool counts 4 slots by the node's total,
    2 of its workers can never be placed; after the placement deadline (3 s here, 120 s by
    default) they are given up, their jobs go to the 2 that run, uncharged."""
    import ray

    from pbtnas.backends.ray_backend import RayBackend

    holder = hold_cpus(cluster, cluster.head_node.node_id, 0.5)
    try:
        backend = RayBackend(cpus_per_member=0.25, address=cluster.address, placement_timeout=3.0)
        summary = Runner(ray_config(cluster, step_seconds=1.0), tmp_path / "run", backend=backend, progress=False).start().run()
    finally:
        ray.kill(holder)
    store = RunStore(tmp_path / "run")
    resized = list(store.iter_events("pool_resized"))
    assert [(e["old"], e["new"]) for e in resized] == [(4, 3), (3, 2)]
    assert all("was not placed within 3 s" in e["reason"] for e in resized)
    assert list(store.iter_events("member_retry")) == [] and list(store.iter_events("member_failed")) == []
    assert_same_result(tmp_path / "run", summary, reference)


@pytest.mark.slow
def test_no_node_left_for_members_stops_the_run_with_one_error_and_resume_finishes_it(cluster, reference, tmp_path, monkeypatch):
    """The head is full (another actor holds its CPU) and the second node, which ran every member,
    is lost after step 1: nothing can take a member, so after the start deadline (8 s here, 180 s
    by default) the run stops with one error naming what to do; once the head is free again,
    ``resume`` ends with the result of the run that lost nothing."""
    import ray

    from pbtnas.backends import ray_backend
    from pbtnas.engine.runner import resume_runner
    from pbtnas.errors import PbtnasError

    monkeypatch.setattr(ray_backend, "START_TIMEOUT_S", 8.0)
    holder = hold_cpus(cluster, cluster.head_node.node_id, 1.0)
    node = add_second_node(cluster)
    try:
        backend = ray_backend.RayBackend(cpus_per_member=0.25, address=cluster.address, placement_timeout=3.0)
        runner = Runner(ray_config(cluster), tmp_path / "run", backend=backend, observers=[RemoveNodeAfter(cluster, node, 1)], progress=False)
        with pytest.raises(PbtnasError, match=r"no Ray node could take a member \(0.25 CPUs, 0 GPUs\) for 8 s: .*pbtnas resume"):
            runner.start().run()
    finally:
        ray.kill(holder)
    assert RunStore(tmp_path / "run").read_manifest()["step_done"] == 1
    summary = resume_runner(tmp_path / "run", progress=False).run()
    assert_same_result(tmp_path / "run", summary, reference)
