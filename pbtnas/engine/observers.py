"""What a runner tells its observers while a search runs (loggers, tests, a caller's own hooks).

A runner calls the hooks of :class:`RunObserver` on every object in ``runner.observers``, in order,
in the driver process. Subclass it and override the hooks you need; the others do nothing. An
object that does not subclass it works as well (hooks it lacks are skipped), but only the hook
names in :data:`HOOKS` are ever called. A hook that raises stops the run (tests use this to
simulate a crash at a chosen moment); hooks must not change the run's members.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pbtnas.backends.base import TrainResult
    from pbtnas.rundir.records import MemberEntry
    from pbtnas.search.operators.mixing import ChildRecord


class RunObserver:
    """Base of runner observers: every hook is a no-op."""

    def on_member_result(self, step: int, member: MemberEntry, result: TrainResult) -> None:
        """One member finished step ``step`` (``member``: its :class:`~pbtnas.rundir.records.MemberEntry`, after the result was
        recorded; ``result``: the backend's result). Called after the result was committed."""

    def on_child(self, step: int, member: MemberEntry, record: ChildRecord) -> None:
        """Exploitation after ``step`` made a child (``member``: the child's entry;
        ``record``: what the operator did, as journaled in ``child_created``)."""

    def on_step_end(self, step: int, runner: Any) -> None:
        """Step ``step`` is committed (manifest written, ``step_done`` journaled); ``runner.members``
        and ``runner.best`` (a :class:`~pbtnas.rundir.records.BestRecord` or None) say where it stands."""

    def on_finish(self, summary: dict) -> None:
        """The run ended; ``summary`` is what ``summary.json`` holds."""


#: the hook names a runner calls (``Runner._notify`` refuses any other)
HOOKS = frozenset(name for name in vars(RunObserver) if name.startswith("on_"))


__all__ = ["HOOKS", "RunObserver"]
