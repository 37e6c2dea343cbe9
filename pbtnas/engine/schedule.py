"""The schedule seam: one small object per schedule family, driven by the runner's one loop.

The :class:`~pbtnas.engine.runner.Runner` owns the run (task, store, backend, population, best
network) and its one loop: ``begin`` -> ``next_result`` -> ``on_result`` -> commit ->
``committed``. A :class:`Schedule` turns each finished member step into decisions: the member
continues, is replaced by a child, stops, or a new trial starts. It records and acts through the
runner's services (:meth:`~pbtnas.engine.runner.Runner.record`,
:meth:`~pbtnas.engine.runner.Runner.make_child`, :meth:`~pbtnas.engine.runner.Runner.job`, ...), which
do the I/O, and contributes its own part of the records the runner writes (``run_started``, the
manifest, ``run_resumed``, the summary): each such hook takes the record the runner built and
returns it with this schedule's fields set (``dataclasses.replace``, which mypy checks against
:mod:`pbtnas.rundir.records`).
Schedules are named in one registry, :mod:`pbtnas.search.schedules`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from pbtnas.backends import Backend, TrainResult
from pbtnas.config import RunConfig
from pbtnas.engine import seeding
from pbtnas.rundir.records import Manifest, MemberCreated, MemberEntry, RunResumed, RunStarted, Summary, fitness_of
from pbtnas.search.algorithms import Operator, build_operator
from pbtnas.search.selection import rank

if TYPE_CHECKING:
    from pbtnas.engine.runner import Runner


class Schedule:
    """Base of every schedule: what the runner's loop asks of it, with the defaults most share.

    Called only by the runner that owns it (``self.runner``), from its one process. It may
    submit jobs to the backend it is handed and must leave files to the runner's services."""

    #: the ``mode`` its manifests record (None: none, as the synchronous schedule's)
    recorded_mode: ClassVar[str | None] = None
    #: what progress notes call a member ("trial" for bohb)
    unit: ClassVar[str] = "member"
    #: why ``steps`` may never change on resume (None: they may, and a finished run can be reopened)
    steps_fixed: ClassVar[str | None] = None

    def __init__(self, runner: Runner):
        self.runner = runner

    @classmethod
    def make_operator(cls, config: RunConfig) -> Operator:
        """The operator the run uses (children, refreshes): the config's algorithm's, from the
        registry (:data:`pbtnas.search.algorithms.ALGORITHMS`)."""
        return build_operator(config)

    # -- the start --------------------------------------------------------------------------
    def run_started_part(self, started: RunStarted) -> RunStarted:
        """The ``run_started`` event with what this schedule adds to it."""
        return started

    def populate(self) -> None:
        """The initial population (journaled): by default the stratified one, one member a slot."""
        r = self.runner
        rng = seeding.rng_for(r.config.seed, seeding.INIT)
        genomes = r.task.space.stratified_population(r.config.population, rng)
        for slot, genome in enumerate(genomes):
            member = MemberEntry(
                slot=slot, uid=slot, genome=genome, checkpoint=None, init_seed=seeding.int_seed(r.config.seed, seeding.MEMBER_INIT, slot)
            )
            r.members.append(member)
            r.store.append(MemberCreated(step=0, slot=slot, uid=slot, genome=genome, seed=member.init_seed))
        r.next_uid = len(genomes)

    def ready(self) -> bool:
        """Whether start or resume has set it up (``run`` refuses to go on otherwise)."""
        return bool(self.runner.members)

    # -- the loop ---------------------------------------------------------------------------
    def begin(self, backend: Backend) -> None:
        """Submit the first jobs (of a fresh run, or where a resumed one stands)."""
        raise NotImplementedError

    def next_result(self, backend: Backend) -> TrainResult | None:
        """The next result to handle; None when the schedule is done."""
        return backend.next_result() if backend.pending() else None

    def on_result(self, backend: Backend, result: TrainResult) -> bool:
        """Record ``result`` and act on it (submit, replace, stop, start); True when the runner is
        to commit now (write the manifest), after which it calls :meth:`committed`."""
        raise NotImplementedError

    def committed(self, backend: Backend) -> None:
        """What follows a commit (step events, observers, pruning, the next submissions)."""

    def end(self) -> None:
        """After the last result, before the run delivers; may refuse to deliver (RunError)."""

    # -- records ----------------------------------------------------------------------------
    def trial_of(self, member: MemberEntry) -> int | None:
        """The trial a member's step events name (bohb); None: the events name none."""
        return None

    def last_step(self, member: MemberEntry) -> int:
        """The last step ``member``'s slot has committed."""
        return self.runner.step_done

    # -- the manifest -----------------------------------------------------------------------
    def manifest_part(self, manifest: Manifest) -> Manifest:
        """The manifest the runner built, with this schedule's part set."""
        return manifest

    def load_fields(self, manifest: Manifest) -> None:
        """Read back this schedule's part of the manifest (on resume); may refuse it."""

    def resumed_record(self) -> RunResumed:
        """The ``run_resumed`` event: where the run goes on. The journal reader voids the events
        a resume redoes from its fields alone: per slot at or after ``slot_steps[slot]`` when
        given, else at or after ``from_step``."""
        return RunResumed(from_step=self.runner.step_done + 1)

    def make_up(self, step: int) -> None:
        """On reopening a finished run for more steps: what step ``step`` skipped because it was
        the last of the budget then (never called when :attr:`steps_fixed`)."""

    # -- the end ----------------------------------------------------------------------------
    def final_member(self, selection: str) -> tuple[str, dict, Path]:
        """(selection, info, checkpoint path) of the network the run delivers: the best-ever
        network, or (best-last) the best member of the last population (ties by a seeded draw)."""
        r = self.runner
        if selection == "best-ever" and r.best is not None:
            return selection, r.best.to_dict(), r.store.best_dir / "member.pt"
        order = rank({m.slot: fitness_of(m) for m in r.members}, seeding.rng_for(r.config.seed, seeding.FINAL))
        leader = r.members[order[0]]
        info = {"uid": leader.uid, "fitness": leader.fitness, "step": r.step_done, "genome": leader.genome, "slot": leader.slot}
        return "best-last", info, r.store.absolute(leader.checkpoint)

    def summary_part(self, summary: Summary) -> Summary:
        """``summary.json`` with what this schedule adds to it."""
        return summary


__all__ = ["Schedule", "fitness_of"]
