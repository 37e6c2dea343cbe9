"""Run jobs in a pool of local worker processes (the default backend).

Workers are started with the ``spawn`` method (torch and fork do not mix) and each imports the
task once. A worker that dies mid-job (killed, out of memory) breaks the pool: the pool is
rebuilt and every job it was running comes back as ``lost_worker`` for the runner to retry.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from .base import Backend, TrainJob, TrainResult
from .worker import execute_job


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    _exit_with_parent(os.getppid())


def _exit_with_parent(parent: int, period: float = 1.0) -> None:
    """A worker whose driver died (``kill -9``) exits within about a second instead of living on
    as an orphan holding its memory: a daemon thread notices that the process was re-parented."""
    import threading
    import time

    def watch() -> None:
        while True:
            time.sleep(period)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="pbtnas-parent-watch", daemon=True).start()


class LocalBackend(Backend):
    """A process pool of ``workers`` processes on this machine."""

    name = "local"

    def __init__(self, workers: int, threads_per_worker: int = 1):
        self.workers = max(1, workers)
        self.threads = threads_per_worker
        self._pool: ProcessPoolExecutor | None = None
        self._futures: dict[Future, TrainJob] = {}
        self._ready: list[TrainResult] = []

    @property
    def slots(self) -> int:
        return self.workers

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(self.threads,),
            )
        return self._pool

    def submit(self, job: TrainJob) -> None:
        try:
            future = self._executor().submit(execute_job, job)
        except BrokenProcessPool:
            self._reset_pool()
            future = self._executor().submit(execute_job, job)
        self._futures[future] = job

    def next_result(self) -> TrainResult:
        if self._ready:
            return self._ready.pop(0)
        if not self._futures:
            raise RuntimeError("no job pending")
        done, _ = wait(list(self._futures), return_when=FIRST_COMPLETED)
        broken = False
        for future in sorted(done, key=lambda f: (self._futures[f].slot, self._futures[f].uid)):
            job = self._futures.pop(future)
            try:
                self._ready.append(future.result())
            except BrokenProcessPool:
                broken = True
                self._ready.append(_lost(job, "worker process died (killed or out of memory)"))
        if broken:
            self._reset_pool()
        return self._ready.pop(0)

    def _reset_pool(self) -> None:
        # Every job of a broken pool is lost; collect them now so none waits forever.
        old, self._pool = self._pool, None
        if old is not None:
            old.shutdown(wait=False, cancel_futures=True)
        for future, job in list(self._futures.items()):
            self._futures.pop(future)
            self._ready.append(_lost(job, "worker pool was rebuilt after a worker died"))

    def pending(self) -> int:
        return len(self._futures) + len(self._ready)

    def worker_pids(self) -> list[int]:
        """PIDs of the live worker processes (for fault-injection tests and monitoring)."""
        if self._pool is None:
            return []
        return [p.pid for p in getattr(self._pool, "_processes", {}).values() if p.is_alive()]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _lost(job: TrainJob, reason: str) -> TrainResult:
    return TrainResult(job.slot, job.uid, job.step, float("-inf"), {}, 0.0, job.state_out,
                       error=reason, attempt=job.attempt, lost_worker=True)
