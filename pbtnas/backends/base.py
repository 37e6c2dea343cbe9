"""The backend seam: run "train member m for one step" somewhere and hand back its result.

A backend never changes results: the job carries every seed, and the same job gives the same
result on every backend. Backends differ only in where and how many jobs run at once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from pbtnas.rundir.records import Record


@dataclass
class TrainJob:
    """Everything one member step needs; paths are absolute, seeds explicit."""

    slot: int
    uid: int
    step: int
    genome: dict
    state_in: str | None  # checkpoint to start from; None = fresh initialisation
    state_out: str  # where the trained checkpoint goes (written atomically)
    init_seed: int
    train_seed: int
    eval_seed: int
    task_config: dict
    threads: int = 1
    task_roots: list = field(default_factory=list)  # folders holding a user's task module
    attempt: int = 1
    meta: dict = field(default_factory=dict)
    #: a run with several objectives: the values to report besides the fitness (built-in costs,
    #: metrics of evaluate); empty for a single-objective run
    values: list = field(default_factory=list)


@dataclass
class TrainResult:
    """Outcome of a :class:`TrainJob`. ``error`` is set when the member failed (fitness -inf)."""

    slot: int
    uid: int
    step: int
    fitness: float
    metrics: dict[str, Any]
    seconds: float
    state_out: str
    error: str | None = None
    diverged: bool = False
    worker: str = ""
    attempt: int = 1
    peak_rss_mb: float = 0.0
    lost_worker: bool = False  # the worker process died; the runner may retry
    #: with ``TrainJob.values``: the fitness and every value asked for, by name (None otherwise)
    values: dict[str, float] | None = None


class Backend(ABC):
    """Runs train jobs. ``submit`` queues a job; ``next_result`` blocks for any finished one."""

    name: str = "backend"
    #: set by the runner: ``listener(record, message)`` journals ``record`` and shows ``message``
    #: on the console (see :meth:`emit`)
    listener: Callable[[Record, str], None] | None = None

    def emit(self, record: Record, message: str = "") -> None:
        """Tell the run about something the backend did on its own (e.g. a
        :class:`~pbtnas.rundir.records.PoolResized` when a Ray node left): ``record`` is journaled,
        ``message`` shown on the console. Without a listener (a backend used on its own) nothing happens."""
        if self.listener is not None:
            self.listener(record, message)

    @abstractmethod
    def submit(self, job: TrainJob) -> None:
        """Queue one job. Must not block on its completion."""

    @abstractmethod
    def next_result(self) -> TrainResult:
        """Block until some submitted job finishes and return its result (in completion order)."""

    @abstractmethod
    def pending(self) -> int:
        """Jobs submitted whose results were not yet returned."""

    @property
    def slots(self) -> int:
        """How many jobs run at once (for progress and efficiency figures)."""
        return 1

    def ready(self) -> int:
        """Results :meth:`next_result` can return without waiting. Optional: the default 0 (not
        known) makes the asynchronous runner commit after every result; a backend that knows
        (Ray) lets it batch the results already waiting into one manifest write."""
        return 0

    def close(self) -> None:
        """Release workers. Called once when the run ends or fails."""
