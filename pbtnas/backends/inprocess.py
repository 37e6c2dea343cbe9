"""Run jobs one after another in the calling process (tests, debugging)."""

from __future__ import annotations

from collections import deque

from pbtnas.backends.base import Backend, TrainJob, TrainResult
from pbtnas.backends.worker import execute_job


class InProcessBackend(Backend):
    """Executes each job at ``next_result`` time, in submission order."""

    name = "inprocess"

    def __init__(self):
        self._queue: deque[TrainJob] = deque()

    def submit(self, job: TrainJob) -> None:
        self._queue.append(job)

    def next_result(self) -> TrainResult:
        if not self._queue:
            raise RuntimeError("no job pending")
        return execute_job(self._queue.popleft())

    def pending(self) -> int:
        return len(self._queue)
