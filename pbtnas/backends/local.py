"""Run jobs in a pool of local worker processes (the default backend).

Workers are started with the ``spawn`` method (torch and fork do not mix), each imports the task
once and runs one job at a time, talking to the driver over a pipe of its own. The driver keeps
the queue, so it always knows which job runs on which worker:

* a worker that dies mid-job (killed, out of memory) costs exactly that job: it comes back as
  ``lost_worker`` for the runner to retry (an attempt charged to that member only), the dead
  worker is replaced by a fresh one, and every other job - queued or running on another worker -
  goes on untouched;
* a worker whose driver died (``kill -9``) exits at once, even while it is still starting up
  (importing torch): its first instructions, before any heavy import, ask the kernel to kill it
  with its parent and start a watch thread (:mod:`pbtnas.backends.guard`), so nothing is left
  holding memory; only then does it import its body (:mod:`pbtnas.backends.local_worker`). The
  multiprocessing resource tracker, which only the workers keep open, then exits as well.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections import deque
from multiprocessing.connection import wait

from pbtnas import faults
from pbtnas.backends import guard
from pbtnas.backends.base import Backend, TrainJob, TrainResult


class _Worker:
    """Driver-side handle of one worker process."""

    def __init__(self, ctx, threads: int, index: int):
        self.conn, child = ctx.Pipe(duplex=True)
        # The child runs guard.BOOT first, which watches this process before torch is imported (a
        # function of this module as the target would import the pbtnas package, and torch, before
        # any line of ours ran). The kernel's parent-death signal is asked for only when this is
        # the main thread: Linux sends it when the forking *thread* ends.
        pdeathsig = threading.current_thread() is threading.main_thread()
        args = (child, threads, os.getpid(), multiprocessing.get_start_method(), pdeathsig)
        namespace = {"GUARD": guard.__file__, "ARGS": args}
        self.process = ctx.Process(target=exec, args=(guard.BOOT, namespace), name=f"pbtnas-worker-{index}", daemon=True)
        self.process.start()
        child.close()
        self.job: TrainJob | None = None

    def stop(self, wait_s: float = 5.0) -> None:
        if self.process.is_alive():
            try:
                self.conn.send(None)
            except OSError:
                pass
            self.process.join(wait_s)
            if self.process.is_alive():
                self.process.kill()
                self.process.join(1.0)
        self.conn.close()


class LocalBackend(Backend):
    """``workers`` worker processes on this machine (see module docstring)."""

    name = "local"

    def __init__(self, workers: int, threads_per_worker: int = 1):
        self.workers = max(1, workers)
        self.threads = threads_per_worker
        self._ctx = multiprocessing.get_context("spawn")
        self._pool: list[_Worker] = []
        self._queue: deque[TrainJob] = deque()
        self._ready: list[TrainResult] = []
        self._started = 0
        self.replaced = 0  # workers that died and were replaced (monitoring, tests)

    @property
    def slots(self) -> int:
        return self.workers

    def submit(self, job: TrainJob) -> None:
        self._queue.append(job)
        self._dispatch()

    def _dispatch(self) -> None:
        while self._queue:
            idle = next((w for w in self._pool if w.job is None), None)
            if idle is None:
                if len(self._pool) >= self.workers:
                    return
                idle = _Worker(self._ctx, self.threads, self._started)
                self._started += 1
                self._pool.append(idle)
                faults.at("spawned", self._queue[0].step)  # tests: the driver dies while this worker starts up
            job = self._queue.popleft()
            try:
                idle.conn.send(job)
            except OSError:  # died before it got the job: the job was never run, so it goes back free
                self._queue.appendleft(job)
                self._replace(idle)
                continue
            idle.job = job
            faults.at("dispatched", job.step)  # tests: the driver dies while this job runs

    def next_result(self) -> TrainResult:
        while not self._ready:
            busy = [w for w in self._pool if w.job is not None]
            if not busy:
                raise RuntimeError("no job pending")
            waitables = {}
            for w in busy:
                waitables[w.conn] = w
                waitables[w.process.sentinel] = w
            ready = wait(list(waitables))
            done = []
            for obj in ready:
                w = waitables[obj]
                if w not in done:
                    done.append(w)
            # Several at once: a fixed order (slot, uid) so results do not depend on polling.
            for w in sorted(done, key=lambda w: (w.job.slot, w.job.uid) if w.job else (-1, -1)):
                self._collect(w)
            self._dispatch()
        return self._ready.pop(0)

    def _collect(self, w: _Worker) -> None:
        job = w.job
        assert job is not None, "only busy workers are collected"
        result = None
        if w.conn.poll():
            try:
                result = w.conn.recv()
            except Exception:  # noqa: BLE001 - EOF or half a message: the worker died sending it
                result = None
        if isinstance(result, TrainResult):
            w.job = None
            self._ready.append(result)
            return
        if not wait([w.process.sentinel], timeout=5.0):
            return  # woken up but neither a result nor a death: keep waiting
        # The worker died while running this job: charged to this job only.
        w.process.join(1.0)
        code = w.process.exitcode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit status {code}"
        self._ready.append(_lost(job, f"worker process died ({how}; killed or out of memory)"))
        self._replace(w)

    def _replace(self, w: _Worker) -> None:
        w.job = None
        try:
            w.stop(wait_s=0.0)
        except OSError:
            pass
        if w in self._pool:
            self._pool.remove(w)
        self.replaced += 1
        # a fresh worker is started by _dispatch when a job needs it

    def pending(self) -> int:
        return len(self._queue) + len(self._ready) + sum(1 for w in self._pool if w.job is not None)

    def worker_pids(self) -> list[int]:
        """PIDs of the live worker processes (for fault-injection tests and monitoring)."""
        return [w.process.pid for w in self._pool if w.process.is_alive()]

    def running_workers(self) -> dict[int, int]:
        """``{uid: pid}`` of the workers running a job now."""
        return {w.job.uid: w.process.pid for w in self._pool if w.job is not None and w.process.is_alive()}

    def close(self) -> None:
        """Stop every worker: idle ones are asked to exit, busy ones (their jobs abandoned: the run
        ended or failed) are killed at once; none is waited for more than a few seconds."""
        import time

        pool, self._pool = self._pool, []
        for w in pool:
            try:
                if w.job is not None:
                    w.process.kill()
                else:
                    w.conn.send(None)
            except OSError:
                pass
        deadline = time.monotonic() + 5.0
        for w in pool:
            w.process.join(max(0.0, deadline - time.monotonic()))
            if w.process.is_alive():
                w.process.kill()
                w.process.join(1.0)
            w.conn.close()
        self._queue.clear()


def _lost(job: TrainJob, reason: str) -> TrainResult:
    return TrainResult(job.slot, job.uid, job.step, float("-inf"), {}, 0.0, job.state_out, error=reason, attempt=job.attempt, lost_worker=True)
