"""Run member steps on Ray Core: a pool of actors, each holding one slot of the cluster's
resources (``cpus_per_member`` CPUs, ``gpus_per_member`` GPUs, fractions allowed).

Why actors rather than plain tasks: an actor keeps its task (data set, imports) warm between
steps like a local worker, the pool size is exactly the number of slots, and the driver knows
which process runs which job, so a worker's death is pinned to one job and the fault test can
kill a worker that is mid-step.

How a member state travels:

* default: through Ray's object store. The driver reads the input checkpoint, ``ray.put``\\ s it,
  the actor writes it to its own temporary folder, runs the ordinary
  :func:`~pbtnas.backends.worker.execute_job`, and returns the trained checkpoint's bytes; the
  driver writes them atomically to the run directory. Works on any cluster without a shared disk.
* ``storage`` set: through a shared folder or fsspec URL (:mod:`pbtnas.backends.transfer`); only keys
  travel through Ray. Useful when states are large.

Never over ssh or rsync. The run directory lives with the driver only, so ``pbtnas resume``
works as on a laptop.

Worker loss (a killed process, an out-of-memory kill, a lost node) comes back as a result with
``lost_worker=True``; the runner decides whether to retry. Ray's own task/actor retries are off
so that every retry is the runner's and lands in the journal.

The pool follows the cluster. The backend places every actor itself, pinned to a node with a free
slot (``NodeAffinitySchedulingStrategy``), and counts the slots of each live node. It looks at the
cluster again whenever a worker is lost and every :data:`REFRESH_S` seconds while it waits: a node
that left (gone from ``ray.nodes()``, or its raylet refusing connections, which is known before
Ray's health check says so) takes its slots away; a node that joined adds its own. An actor not
started within :data:`PLACEMENT_TIMEOUT_S` (its resources taken by something else) is given up
with its slot, and an actor that died before it ever started charges nothing: their jobs go back
to the queue, uncharged, for the live actors. Every change of the pool size is reported through
:meth:`~pbtnas.backends.base.Backend.emit` (the runner journals ``pool_resized``). A run never
waits forever: with no node left that can take a member, :meth:`RayBackend.next_result` raises
a :class:`~pbtnas.errors.PbtnasError` after :data:`START_TIMEOUT_S` seconds.
"""

from __future__ import annotations

import math
import os
import socket
import tempfile
import time
import uuid
from collections import deque
from dataclasses import replace
from pathlib import Path

from pbtnas import faults
from pbtnas.backends.base import Backend, TrainJob, TrainResult
from pbtnas.errors import PbtnasError, require
from pbtnas.rundir.atomic import atomic_write_bytes, sync_before_commit
from pbtnas.rundir.records import PoolResized

#: seconds the first actor may take to start (imports torch) before the backend gives up; also how
#: long a run waits for a node that can take a member when none is left
START_TIMEOUT_S = 180.0
#: seconds any later actor may take to be placed and start before its jobs go to the live actors
PLACEMENT_TIMEOUT_S = 120.0
#: seconds between looks at the cluster's nodes while the driver waits (a node joining or leaving)
REFRESH_S = 5.0
#: longest single wait for a result before the backend checks whether it is time to look again
POLL_S = 1.0
#: workers that died before starting on one node after which no more are placed there
MAX_START_FAILURES = 2
#: seconds a node whose worker was lost, and whose raylet neither answers nor refuses, gets no new
#: jobs (a machine that vanished; Ray's health check decides meanwhile)
SUSPECT_S = 30.0


class MemberWorker:
    """The actor body: runs one member step at a time in this process (see module docstring)."""

    def __init__(self, threads: int = 1):
        import torch

        torch.set_num_threads(max(1, threads))
        self.dir = tempfile.mkdtemp(prefix="pbtnas-ray-worker-")
        self._storages: dict = {}

    def info(self) -> dict:
        return {"pid": os.getpid(), "host": socket.gethostname(), "version": pbtnas_version()}

    def _storage(self, url: str):
        from pbtnas.backends.transfer import open_storage

        if url not in self._storages:
            self._storages[url] = open_storage(url)
        return self._storages[url]

    def read_probe(self, storage_url: str, key: str) -> bytes:
        return self._storage(storage_url).get(key)

    def run(
        self, job: TrainJob, state: bytes | None, storage_url: str | None, in_key: str | None, out_key: str | None
    ) -> tuple[TrainResult, bytes | None, bool]:
        """Execute ``job`` with local temporary paths; return (result, output bytes, output exists)."""
        from pbtnas.backends.worker import execute_job

        tag = uuid.uuid4().hex[:8]
        local_in = None
        if job.state_in is not None:
            data = state if storage_url is None else self._storage(storage_url).get(in_key)
            local_in = os.path.join(self.dir, f"in-{tag}.pt")
            assert data is not None, "the driver sends a state or a storage key"
            Path(local_in).write_bytes(data)
        local_out = os.path.join(self.dir, f"out-{tag}.pt")
        try:
            result = execute_job(replace(job, state_in=local_in, state_out=local_out))
            out, exists = None, os.path.exists(local_out)
            if exists:
                out = Path(local_out).read_bytes()
                if storage_url is not None:
                    self._storage(storage_url).put(out_key, out)
                    out = None
            result.state_out = job.state_out
            return result, out, exists
        finally:
            for path in (local_in, local_out):
                if path and os.path.exists(path):
                    os.unlink(path)


class _Actor:
    """Driver-side handle of one pool actor."""

    def __init__(self, handle, node: str):
        self.handle = handle
        self.node = node  # the node it is pinned to
        self.info_ref = handle.info.remote()  # resolves once the process is up
        self.refs: deque = deque()  # jobs handed to this actor, the running one first
        self.created = time.monotonic()
        self.started = False  # info_ref resolved: the process runs (and so may have started a job)


class _Node:
    """What the backend knows of one Ray node: how many members fit there and whether to use it."""

    def __init__(self, node_id: str, info: dict, slots: int):
        self.id = node_id
        self.ip = info.get("NodeManagerAddress", "?")
        self.port = int(info.get("NodeManagerPort") or 0)
        self.slots = slots
        self.blocked = 0  # slots given up: actors placed here missed the deadline or died starting
        self.start_failures = 0
        self.lost = False  # its raylet refused a connection: gone, whatever the GCS says yet
        self.suspect_until = 0.0  # lost a worker and its raylet did not answer: no new jobs until then

    @property
    def suspect(self) -> bool:
        return time.monotonic() < self.suspect_until

    @property
    def usable(self) -> int:
        return 0 if self.lost else max(0, self.slots - self.blocked)

    @property
    def label(self) -> str:
        return f"{self.ip} ({self.id[:8]})"


class RayBackend(Backend):
    """A pool of Ray actors, one per slot, each training one member step at a time (with one more
    queued); see the module docstring. Build it with :meth:`from_config` or directly (tests,
    benchmarks); :meth:`close` stops the actors and a Ray this backend started."""

    name = "ray"

    def __init__(
        self,
        cpus_per_member: float = 1.0,
        gpus_per_member: float = 0.0,
        address: str = "",
        storage: str = "",
        threads: int = 1,
        max_workers: int = 0,
        queue_depth: int = 2,
        placement_timeout: float = PLACEMENT_TIMEOUT_S,
    ):
        self.ray = require("ray", "ray")
        self.placement_timeout = float(placement_timeout)
        self._max_workers = max_workers
        self._nodes: dict[str, _Node] = {}
        self._last_scan = time.monotonic()
        self.cpus, self.gpus, self.threads = float(cpus_per_member), float(gpus_per_member), threads
        # Jobs handed to one actor at a time: with 2 the actor starts its next job the moment one
        # ends, while the driver is still journaling the last result (hides driver latency).
        self.queue_depth = max(1, queue_depth)
        if self.cpus < 0 or self.gpus < 0 or (self.cpus == 0 and self.gpus == 0):
            raise PbtnasError(f"cpus_per_member ({cpus_per_member}) and gpus_per_member ({gpus_per_member}) must be >= 0 and not both 0")
        self._storage = None
        if storage:
            from pbtnas.backends.transfer import check_writable, open_storage

            self._storage = open_storage(storage)
            self._probe_key = check_writable(self._storage)
        self._token = f"run-{uuid.uuid4().hex[:12]}"
        self._owns_ray = _connect(self.ray, address)
        try:
            self._slots = self._check_resources()
            self._remote = self.ray.remote(num_cpus=self.cpus, num_gpus=self.gpus, max_restarts=0, max_task_retries=0)(MemberWorker)
            self._all: list[_Actor] = []
            self._queue: deque[TrainJob] = deque()
            self._running: dict = {}  # object ref -> (job, actor, in_key, out_key)
            self._ready: list[TrainResult] = []
            self.requeued = 0  # jobs handed back to the queue free when their actor died before starting them
            self._uploaded: dict[str, tuple[str, tuple]] = {}  # local path -> (storage key, signature)
            self._check_first_worker()
        except BaseException:
            self.close()
            raise

    @classmethod
    def from_config(cls, config) -> "RayBackend":
        """Connect (or start a local Ray) and check everything a run needs before it trains."""
        return cls(config.cpus_per_member, config.gpus_per_member, config.ray_address, config.storage, config.threads_per_member, config.workers)

    # -- checks before training ---------------------------------------------------------------
    def _check_resources(self, max_workers: int | None = None) -> int:
        """Slots = members that fit at once, node by node (a member cannot span two nodes)."""
        if max_workers is not None:
            self._max_workers = max_workers
        live = self._live_nodes()
        nodes = [n.get("Resources", {}) for n in live.values()]
        have_cpu = sum(float(n.get("CPU", 0.0)) for n in nodes)
        have_gpu = sum(float(n.get("GPU", 0.0)) for n in nodes)
        if self.cpus > have_cpu + 1e-9:
            raise PbtnasError(f"the Ray cluster has {have_cpu:g} CPUs but cpus_per_member is {self.cpus:g}; lower --cpus-per-member or add nodes")
        if self.gpus > have_gpu + 1e-9:
            raise PbtnasError(
                f"the Ray cluster has {have_gpu:g} GPUs but gpus_per_member is {self.gpus:g}; use --gpus-per-member 0 or a cluster with GPUs"
            )
        self._nodes = {node_id: _Node(node_id, info, self._fits(info)) for node_id, info in live.items()}
        # A node that just died may still be listed for a while (Ray's health check is slow): one
        # whose raylet refuses connections gets no actors. Ignored if it would be every node.
        gone = [node for node in self._nodes.values() if node.slots and _raylet_answers(self.ray, node) is False]
        if len(gone) < sum(1 for node in self._nodes.values() if node.slots):
            for node in gone:
                node.lost = True
        if self._capacity() == 0:
            raise PbtnasError(
                f"no single Ray node has {self.cpus:g} CPUs and {self.gpus:g} GPUs free for one member; lower --cpus-per-member / --gpus-per-member"
            )
        return self._capacity()

    def _fits(self, info: dict) -> int:
        """Members that fit on one node (by its total resources)."""
        node = info.get("Resources", {})
        fits = [math.floor(float(node.get("CPU", 0.0)) / self.cpus + 1e-9)] if self.cpus > 0 else []
        if self.gpus > 0:
            fits.append(math.floor(float(node.get("GPU", 0.0)) / self.gpus + 1e-9))
        return min(fits)

    def _capacity(self) -> int:
        """Slots of the pool now: members that fit on the usable live nodes, at most ``max_workers``."""
        slots = sum(node.usable for node in self._nodes.values())
        return min(slots, self._max_workers) if self._max_workers > 0 else slots

    def _live_nodes(self) -> dict[str, dict]:
        return {n.get("NodeID") or f"node-{i}": n for i, n in enumerate(self.ray.nodes()) if n.get("Alive", True)}

    def _check_first_worker(self) -> None:
        """Start one actor and wait for it: proves workers can import pbtnas (same version) and,
        with a storage location, read what the driver wrote there."""
        # One actor on every node with room, the first to start is checked: a node whose resources
        # are taken by something else must not fail the run while another could take members
        # (the others stay in the pool, under the usual placement deadline).
        nodes = [node.id for node in self._nodes.values() if node.usable and not node.suspect]
        if not nodes:
            raise PbtnasError("the Ray cluster has no node with room for one member (see --cpus-per-member / --gpus-per-member)")
        actors = {actor.info_ref: actor for actor in map(self._new_actor, nodes)}
        started, _ = self.ray.wait(list(actors), num_returns=1, timeout=START_TIMEOUT_S)
        if not started:
            raise PbtnasError(
                f"no Ray worker with {self.cpus:g} CPUs / {self.gpus:g} GPUs started within "
                f"{START_TIMEOUT_S:.0f} s; is the cluster busy or short of resources?"
            )
        actor = actors[started[0]]
        try:
            info = self.ray.get(actor.info_ref, timeout=0)
        except self.ray.exceptions.RayError as exc:
            raise PbtnasError(f"a Ray worker could not start: {_first_line(exc)} (is pbtnas installed on every node?)") from None
        actor.started = True
        if info["version"] != pbtnas_version():
            raise PbtnasError(
                f"Ray worker on {info['host']} runs pbtnas {info['version']}, the driver {pbtnas_version()}; install the same version on every node"
            )
        if self._storage is not None:
            try:
                self.ray.get(actor.handle.read_probe.remote(self._storage.spec(), self._probe_key), timeout=START_TIMEOUT_S)
            except Exception as exc:  # noqa: BLE001 - any failure means the workers cannot use it
                raise PbtnasError(
                    f"storage {self._storage.url!r} is not readable from the Ray worker on "
                    f"{info['host']}: {_first_line(exc)}; use a folder all nodes mount or a URL"
                ) from None
            finally:
                self._storage.delete(self._probe_key)

    # -- the Backend interface ----------------------------------------------------------------
    @property
    def slots(self) -> int:
        return self._slots

    def submit(self, job: TrainJob) -> None:
        self._queue.append(job)
        self._dispatch()

    def next_result(self) -> TrainResult:
        while not self._ready:
            if time.monotonic() - self._last_scan >= REFRESH_S:
                self._look_around()
                continue
            if not self._running:
                if not self._queue:
                    raise RuntimeError("no job pending")
                self._wait_for_room()
                continue
            # a bounded wait: an actor that can never be placed must not hold the run forever
            done, _ = self.ray.wait(list(self._running), num_returns=1, timeout=POLL_S)
            if done:
                self._collect(done[0])
                self._dispatch()
        return self._ready.pop(0)

    def pending(self) -> int:
        return len(self._queue) + len(self._running) + len(self._ready)

    def ready(self) -> int:
        """Results that :meth:`next_result` can return without waiting (collects finished ones)."""
        if self._running:
            done, _ = self.ray.wait(list(self._running), num_returns=len(self._running), timeout=0)
            for ref in done:
                if ref in self._running:  # not already handed back by an earlier one's lost actor
                    self._collect(ref)
            if done:
                self._dispatch()
        return len(self._ready)

    def start_workers(self, n: int | None = None) -> int:
        """Start up to ``n`` (default: all slots) workers now and wait until they run; return how many.

        Workers otherwise start on first use; benchmarks call this so that start-up (importing
        torch in every worker) is not counted as scheduling time."""
        want = min(self._slots, n or self._slots)
        while len(self._all) < want and (node := self._free_node()) is not None:
            self._new_actor(node)
        self.ray.get([a.info_ref for a in self._all], timeout=START_TIMEOUT_S * max(1, want // 4))
        return len(self._all)

    def running_workers(self) -> dict[int, int]:
        """``{uid: pid}`` of the worker processes running a job now (fault tests, monitoring)."""
        out = {}
        for actor in list(self._all):
            if not actor.refs:
                continue
            job = self._running[actor.refs[0]][0]
            try:
                out[job.uid] = self.ray.get(actor.info_ref, timeout=30)["pid"]
            except self.ray.exceptions.RayError:
                continue
        return out

    def close(self) -> None:
        for actor in getattr(self, "_all", []):
            try:
                self.ray.kill(actor.handle)
            except Exception:  # noqa: BLE001 - already dead
                pass
        self._all, self._running = [], {}
        if self._storage is not None:
            self._storage.delete_prefix(self._token)
            self._storage.delete(self._probe_key)  # left behind when a pre-flight check failed
        if getattr(self, "_owns_ray", False) and self.ray.is_initialized():
            self.ray.shutdown()
            self._owns_ray = False

    # -- internals ----------------------------------------------------------------------------
    def _new_actor(self, node: str) -> _Actor:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        # Pinned: the count of each node's slots is then exact, and no actor lands on a node known
        # to be gone that Ray's health check has not caught up with yet.
        strategy = NodeAffinitySchedulingStrategy(node_id=node, soft=False)
        actor = _Actor(self._remote.options(scheduling_strategy=strategy).remote(self.threads), node)
        self._all.append(actor)
        return actor

    def _free_node(self) -> str | None:
        """The usable node with the most free slots (None when every slot has its actor)."""
        best, room = None, 0
        for node in self._nodes.values():
            if node.suspect:
                continue
            free = node.usable - sum(1 for a in self._all if a.node == node.id)
            if free > room:
                best, room = node.id, free
        return best

    def _on_live_node(self, actor: _Actor) -> bool:
        node = self._nodes.get(actor.node)
        return node is not None and not node.lost

    def _usable(self, actor: _Actor) -> bool:
        """Whether ``actor`` may be handed a job: its node is there and not under suspicion."""
        return self._on_live_node(actor) and not self._nodes[actor.node].suspect

    def _dispatch(self) -> None:
        while self._queue:
            # An idle worker first, then a new one while slots are free, then a short queue
            # (on workers that already run first); never a worker on a node that has gone.
            usable = [a for a in self._all if self._usable(a)]
            idle = [a for a in usable if not a.refs]
            placed = sum(1 for a in self._all if self._on_live_node(a))
            node = self._free_node() if not idle and placed < self._slots else None
            if idle:
                actor = idle[0]
            elif node is not None:
                actor = self._new_actor(node)
            else:
                if not usable:
                    return
                actor = min(usable, key=lambda a: (len(a.refs), not a.started))
                if len(actor.refs) >= self.queue_depth:
                    return
            job = self._queue.popleft()
            if faults.spec() and "fault" not in job.meta:
                job = replace(job, meta={**job.meta, "fault": faults.spec()})  # deterministic fault tests
            state, in_key, out_key = None, None, None
            try:
                if self._storage is None:
                    if job.state_in is not None:
                        state = self.ray.put(Path(job.state_in).read_bytes())
                else:
                    in_key = self._upload(job.state_in) if job.state_in is not None else None
                    out_key = f"{self._token}/out/{job.step}/{job.uid}-{job.attempt}.pt"
            except OSError as exc:  # an unreadable checkpoint or a storage hiccup: this job only
                self._ready.append(_lost(job, f"could not send the member's state: {exc}"))
                continue
            ref = actor.handle.run.remote(job, state, self._storage and self._storage.spec(), in_key, out_key)
            actor.refs.append(ref)
            self._running[ref] = (job, actor, in_key, out_key)

    def _upload(self, path: str) -> str:
        """Storage key holding ``path``'s bytes; a file that came from storage is not sent again."""
        stat = os.stat(path)
        signature = (stat.st_size, stat.st_mtime_ns)
        known = self._uploaded.get(path)
        if known and known[1] == signature:
            return known[0]
        key = f"{self._token}/in/{uuid.uuid4().hex}.pt"
        assert self._storage is not None, "only called with a storage location"
        self._storage.put(key, Path(path).read_bytes())
        self._uploaded[path] = (key, signature)
        return key

    def _collect(self, ref) -> None:
        job, actor, in_key, out_key = self._running.pop(ref)
        try:
            result, data, exists = self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as exc:  # our code raised (e.g. storage I/O): retryable
            if ref in actor.refs:
                actor.refs.remove(ref)
            self._ready.append(_lost(job, f"worker raised {_first_line(exc)}"))
            return
        except self.ray.exceptions.RayError as exc:  # the process or node is gone
            self._worker_lost(job, actor, ref, exc)
            return
        if ref in actor.refs:
            actor.refs.remove(ref)
        if actor.node in self._nodes:
            self._nodes[actor.node].suspect_until = 0.0  # a result: the node is alive
        if exists:
            # Renamed into place at once (a crash never leaves half a file) but fsynced in the
            # background: the runner waits for these fsyncs before it commits a manifest naming
            # the file, so the driver does not wait on the disk once per result.
            if self._storage is None:
                atomic_write_bytes(Path(job.state_out), data, durable=False)
            else:
                atomic_write_bytes(Path(job.state_out), self._storage.get(out_key), durable=False)
                stat = os.stat(job.state_out)
                self._uploaded[job.state_out] = (out_key, (stat.st_size, stat.st_mtime_ns))
            sync_before_commit(job.state_out)
        if in_key is not None and self._storage is not None and not any(k == in_key for _, _, k, _ in self._running.values()):
            self._storage.delete(in_key)
            self._uploaded = {p: v for p, v in self._uploaded.items() if v[0] != in_key}
        self._ready.append(result)

    def _worker_lost(self, job: TrainJob, actor: _Actor, ref, exc: BaseException) -> None:
        """An actor died: only the job it was running is charged (``lost_worker``); the jobs
        queued behind it on that actor never started, so they go back to the queue free. An actor
        that died before it started (its node gone, say) charges nothing. Then the cluster is
        looked at again: the death may be its node's."""
        reason = f"Ray worker lost ({type(exc).__name__}): {_first_line(exc)}"
        started = self._has_started(actor)
        refs = list(actor.refs)  # in the order the actor takes them: the running one first
        actor.refs.clear()
        self._discard(actor)
        idx = refs.index(ref) if ref in refs else 0
        before, after = refs[:idx], refs[idx + 1 :]
        # refs handed over before ``ref`` that had finished are collected normally; of the others,
        # the first was the one running when the actor died
        unfinished = [r for r in before if not self._succeeded(r)]
        if not started:
            charged, free = None, [self._running.pop(r)[0] for r in unfinished if r in self._running] + [job]
        elif unfinished:
            charged = self._running.pop(unfinished[0])[0]
            free = [self._running.pop(r)[0] for r in unfinished[1:] if r in self._running] + [job]
        else:
            charged, free = job, []
        free += [self._running.pop(r)[0] for r in after if r in self._running]
        if charged is not None:
            self._ready.append(_lost(charged, reason))
        for queued in reversed(free):
            self._requeue_free(queued)
        self._scan(suspect=actor.node, start_failure=None if started else exc)

    def _has_started(self, actor: _Actor) -> bool:
        return self._start_error(actor) is None and actor.started

    def _start_error(self, actor: _Actor) -> BaseException | None:
        """Note whether ``actor`` started; the error if it died before it did (else None)."""
        if not actor.started and self.ray.wait([actor.info_ref], timeout=0)[0]:
            try:
                self.ray.get(actor.info_ref, timeout=0)
                actor.started = True
            except self.ray.exceptions.RayError as exc:
                return exc
        return None

    # -- following the cluster ----------------------------------------------------------------
    def _look_around(self) -> None:
        """The periodic look: nodes that joined or left, actors that started or missed their deadline."""
        self._scan()
        self._check_starts()
        self._dispatch()

    def _scan(self, suspect: str | None = None, start_failure: BaseException | None = None) -> None:
        """Bring the node table up to date with the cluster and resize the pool if it changed.
        ``suspect``: the node of an actor that just died (its raylet is asked whether it is up);
        ``start_failure``: that actor died before it started (counted against its node)."""
        self._last_scan = time.monotonic()
        live = self._live_nodes()
        reasons = []
        for node_id, node in list(self._nodes.items()):
            if node_id not in live:
                del self._nodes[node_id]
                if node.usable:
                    reasons.append(f"node {node.label} left the cluster")
            elif node.lost and _raylet_answers(self.ray, node) is True:
                node.lost = False
                reasons.append(f"node {node.label} answers again")
        for node_id, info in live.items():
            if node_id not in self._nodes:
                self._nodes[node_id] = node = _Node(node_id, info, self._fits(info))
                if node.slots:
                    reasons.append(f"node {node.label} joined ({node.slots} slots)")
        suspected = self._nodes.get(suspect) if suspect else None
        if suspected is not None and not suspected.lost:
            answers = _raylet_answers(self.ray, suspected)
            if answers is False:
                suspected.lost = True
                reasons.append(f"node {suspected.label} left: its raylet refuses connections")
            elif answers is None:
                suspected.suspect_until = time.monotonic() + SUSPECT_S
            elif start_failure is not None:
                suspected.start_failures += 1
                if suspected.start_failures >= MAX_START_FAILURES and suspected.usable:
                    suspected.blocked = suspected.slots
                    last = _first_line(start_failure)
                    reasons.append(f"{suspected.start_failures} workers on node {suspected.label} died before starting (last: {last})")
        self._resize("; ".join(reasons))

    def _check_starts(self) -> None:
        """Note the actors that started; let go of those that died before starting, and give up on
        those not placed within the deadline: their jobs go back to the queue free, and the node
        gives up that slot for the rest of this session (a resume counts afresh)."""
        waiting = [a for a in self._all if not a.started]
        if not waiting:
            return
        ready, _ = self.ray.wait([a.info_ref for a in waiting], num_returns=len(waiting), timeout=0)
        late = []
        for actor in waiting:
            if actor.info_ref in ready:
                error = self._start_error(actor)
                if error is not None and actor in self._all:
                    self._release(actor)
                    self._scan(suspect=actor.node, start_failure=error)
            elif time.monotonic() - actor.created > self.placement_timeout:
                late.append(actor)
        for actor in late:
            if actor not in self._all:
                continue
            self._release(actor)
            node = self._nodes.get(actor.node)
            if node is not None and node.usable:
                node.blocked += 1
                self._resize(
                    f"a worker for node {node.label} was not placed within {self.placement_timeout:.0f} s (its resources taken by something else?)"
                )

    def _resize(self, reason: str) -> None:
        """Take the new slot count, report a change, and let go of the actors it leaves no room for."""
        new = self._capacity()
        if new != self._slots:
            old, self._slots = self._slots, new
            reason = reason or "the cluster changed"
            self.emit(PoolResized(old=old, new=new, reason=reason), message=f"Ray pool {old} -> {new} workers: {reason}")
        for node_id in {a.node for a in self._all}:
            node = self._nodes.get(node_id)
            actors = [a for a in self._all if a.node == node_id]
            if node is None or node.lost:
                # gone: idle actors and those never started go now; the jobs running on the
                # others come back as lost work by themselves
                for actor in actors:
                    if not actor.refs or not actor.started:
                        self._release(actor)
                continue
            extra = len(actors) - node.usable
            for actor in sorted(actors, key=lambda a: -a.created):
                if extra <= 0:
                    break
                if not actor.started or not actor.refs:
                    self._release(actor)
                    extra -= 1

    def _release(self, actor: _Actor) -> None:
        """Stop an actor that runs no job of ours (or never started): its jobs go back to the
        queue, uncharged."""
        refs = list(actor.refs)
        actor.refs.clear()
        self._discard(actor)
        for ref in reversed(refs):
            if ref in self._running:
                self._requeue_free(self._running.pop(ref)[0])

    def _wait_for_room(self) -> None:
        """Jobs wait and no actor runs one: wait, bounded, for a node that can take a member."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._running and not self._ready:
            self._look_around()
            if self._running or self._ready:
                return
            if time.monotonic() > deadline:
                raise PbtnasError(
                    f"no Ray node could take a member ({self.cpus:g} CPUs, {self.gpus:g} GPUs) for {START_TIMEOUT_S:.0f} s: "
                    "the nodes that could have left the cluster; add a node, then continue the run with pbtnas resume"
                )
            time.sleep(POLL_S)

    def _succeeded(self, ref) -> bool:
        """Whether ``ref`` finished with a result (rather than not yet, or with the actor's death)."""
        if not self.ray.wait([ref], timeout=0)[0]:
            return False
        try:
            self.ray.get(ref, timeout=0)
        except self.ray.exceptions.RayTaskError:
            return True  # our code raised: a result of its own, collected normally
        except self.ray.exceptions.RayError:
            return False
        return True

    def _requeue_free(self, job: TrainJob) -> None:
        self._queue.appendleft(job)
        self.requeued += 1

    def _discard(self, actor: _Actor) -> None:
        try:
            self.ray.kill(actor.handle)
        except Exception:  # noqa: BLE001 - already dead
            pass
        if actor in self._all:
            self._all.remove(actor)


def pbtnas_version() -> str:
    """The installed pbtnas version (driver and workers must agree)."""
    from importlib import metadata

    try:
        return metadata.version("pbtnas")
    except metadata.PackageNotFoundError:
        return "unknown"


def _connect(ray, address: str) -> bool:
    """Join or start Ray; return whether this process started it (and so must shut it down).

    Bad addresses fail here with one message, before any member trains."""
    if ray.is_initialized():
        return False  # an embedding program (or a test) already connected
    kwargs = dict(include_dashboard=False, log_to_driver=False, logging_level="ERROR", configure_logging=True)
    if not address:
        try:
            ray.init(address="local", num_cpus=os.cpu_count() or 1, **kwargs)
        except Exception as exc:  # noqa: BLE001 - ray raises many types for a failed start
            raise PbtnasError(f"could not start a local Ray: {_first_line(exc)}") from None
        return True
    if address != "auto":
        _probe_tcp(address)
    try:
        ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        hint = (
            "start one with 'ray start --head' or leave --address out to start a local Ray"
            if address == "auto"
            else "check the address and that the cluster runs the same Ray version"
        )
        raise PbtnasError(f"cannot connect to Ray at {address!r}: {_first_line(exc)}; {hint}") from None
    return True


def _raylet_answers(ray, node: _Node, timeout: float = 1.0) -> bool | None:
    """Whether the node's raylet accepts a connection: False when it refuses (the raylet is dead,
    the node gone), None when nothing answers in time (unknown: a vanished machine, or a
    firewall). Not asked through Ray Client, whose driver may not reach the nodes directly."""
    if not node.port:
        return True
    try:
        if ray.util.client.ray.is_connected():
            return True
    except AttributeError:
        pass
    try:
        with socket.create_connection((node.ip, node.port), timeout=timeout):
            return True
    except ConnectionRefusedError:
        return False
    except OSError:
        return None


def _probe_tcp(address: str, timeout: float = 5.0) -> None:
    """Fail fast on a host that does not answer (ray.init would retry for a long time)."""
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise PbtnasError(f"Ray address {address!r} must be 'auto', HOST:PORT or ray://HOST:PORT")
    start = time.monotonic()
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise PbtnasError(
            f"cannot reach the Ray cluster at {address!r} ({exc.strerror or exc} after "
            f"{time.monotonic() - start:.1f} s); is the head node running and the port open?"
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _lost(job: TrainJob, reason: str) -> TrainResult:
    return TrainResult(job.slot, job.uid, job.step, float("-inf"), {}, 0.0, job.state_out, error=reason, attempt=job.attempt, lost_worker=True)
