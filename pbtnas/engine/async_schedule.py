"""Asynchronous PBT-NAS (``mode: async``): no barrier between steps.

Every slot trains its own ``steps`` steps. As soon as a member's step comes back it is
journaled, ranked against the others at comparable progress (:mod:`pbtnas.search.async_selection`)
and, if it is in the bottom tau, replaced at once by a child of two top-tau members; then the
slot's next step is submitted right away. No worker waits for the slowest member of a
generation, which is what the synchronous mode's barrier costs when step times are uneven.

Every processed result is committed to the manifest, so a killed driver resumes with
``pbtnas resume`` from the last committed result of every slot; steps in flight are redone
with the same seeds. Unlike the synchronous mode, decisions depend on the order in which
results arrive, so two async runs with one seed agree only when results arrive in the same order
(they always do on the in-process backend).
"""

from __future__ import annotations

from dataclasses import replace

from pbtnas import faults
from pbtnas.backends import Backend, TrainResult
from pbtnas.engine import seeding
from pbtnas.engine.schedule import Schedule
from pbtnas.rundir.records import Manifest, MemberEntry, RunResumed, StepDone
from pbtnas.search.async_selection import plan_replacement
from pbtnas.search.selection import clean_fitness


class AsyncSchedule(Schedule):
    """Each result is handled (and its slot resubmitted) at once; every slot keeps its own step."""

    recorded_mode = "async"

    def __init__(self, runner):
        super().__init__(runner)
        self.slot_steps: list[int] = []  # per slot: the next step it trains (== steps when done)
        self.history: dict[int, dict[int, float]] = {}  # per slot: step -> fitness
        # several objectives: per slot, step -> the member's values (None: that step failed)
        self.objective_history: dict[int, dict[int, dict | None]] = {}
        self._uncommitted: list[tuple[TrainResult, MemberEntry]] = []

    def populate(self) -> None:
        self.slot_steps = [0] * self.runner.config.population
        self.history = {slot: {} for slot in range(self.runner.config.population)}
        self.objective_history = {slot: {} for slot in range(self.runner.config.population)} if self.runner.front is not None else {}
        super().populate()

    # -- the loop -----------------------------------------------------------------------------
    def begin(self, backend: Backend) -> None:
        r = self.runner
        r.progress.begin(r.step_done + 1)
        # Least-advanced slots first: on a resume this recreates the queue order the run had,
        # so an in-process run resumed mid-way makes the same decisions as an unbroken one.
        for member in sorted(r.members, key=lambda m: (self.slot_steps[m.slot], m.slot)):
            if self.slot_steps[member.slot] < r.config.steps:
                backend.submit(r.job(member, self.slot_steps[member.slot]))
        self._uncommitted = []

    def on_result(self, backend: Backend, result: TrainResult) -> bool:
        r = self.runner
        if not r.settle_lost(backend, r.members[result.slot], result):
            return False
        trained = self._handle(result)
        if self.slot_steps[result.slot] < r.config.steps:
            backend.submit(r.job(r.members[result.slot], self.slot_steps[result.slot]))
        self._uncommitted.append((result, trained))
        # Results that are already waiting are handled before the commit: one manifest
        # write for the batch keeps the driver ahead of many fast workers.
        return not (backend.ready() > 0 and len(self._uncommitted) < r.config.population)

    def committed(self, backend: Backend) -> None:
        for done, trained in self._uncommitted:
            self.runner._notify("on_member_result", done.step, trained, done)
        self._uncommitted.clear()
        self._advance_step_done()

    def _handle(self, result: TrainResult) -> MemberEntry:
        """Record one finished step and replace the member at once if it is in the bottom."""
        r = self.runner
        step, slot = result.step, result.slot
        r.check_failures(result)
        r.record(r.members[slot], result)  # journal, fitness, checkpoint, best (shared with sync)
        member = r.members[slot]
        self.history.setdefault(slot, {})[step] = float("-inf") if member.fitness is None else member.fitness
        if r.front is not None:
            self.objective_history.setdefault(slot, {})[step] = member.objectives
        self.slot_steps[slot] = step + 1
        done_in_step = sum(1 for s in self.slot_steps if s > step)
        r.progress.member_done(step, done_in_step, r.best_fitness, result)
        if step < r.config.steps - 1:
            if r.operator.exploits_after(step, r.config.steps, r.config.exploit_every_first_half):
                self._maybe_replace(slot, step)
            elif r.operator.refreshes_after(step):
                r.refresh_member(r.members[slot], step)
        return member

    def _maybe_replace(self, slot: int, step: int) -> None:
        r = self.runner
        rng = seeding.rng_for(r.config.seed, seeding.EXPLOIT, step, 1 + slot, 0)
        history = self.history if r.front is None else self.objective_history
        plan = plan_replacement(slot, step, history, r.config.population, r.config.tau, rng, r.ranker)
        if plan is None:
            return
        parent_steps = [self.slot_steps[plan.primary] - 1, self.slot_steps[plan.donor] - 1]
        r.members[slot] = r.make_child(step, slot, plan.primary, plan.donor, r.loader(), mode="async", parent_steps=parent_steps)

    def make_up(self, step: int) -> None:
        """On reopening a finished run for more steps: each slot's last result is handled, in slot
        order, as it would have been had it not been the last (replaced if in the bottom, or
        refreshed)."""
        r = self.runner
        for slot in range(len(r.members)):
            if r.operator.exploits_after(step, r.config.steps, r.config.exploit_every_first_half):
                self._maybe_replace(slot, step)
            elif r.operator.refreshes_after(step):
                r.refresh_member(r.members[slot], step)

    def _advance_step_done(self) -> None:
        """A step counts as done once every slot has passed it (for status, reports, observers)."""
        r = self.runner
        while r.step_done + 1 < min(self.slot_steps):
            r.step_done += 1
            step = r.step_done
            r.front_step_done(step)
            r._write_manifest()
            r.store.append(
                StepDone(
                    step=step,
                    best_fitness=r.best_fitness,
                    population_fitness=[self.history[m.slot].get(step) for m in r.members],
                    mode="async",
                )
            )
            r.draw_samples(step)
            self.prune(step)
            r._notify("on_step_end", step, r)
            faults.at("after-step", step)  # the same fault point as the other schedules

    def prune(self, step: int) -> None:
        # Checkpoints a member still points at (its current state, the input of its running step)
        # are always kept; other folders older than the slowest slot's window go.
        referenced = {m.checkpoint for m in self.runner.members if m.checkpoint}
        self.runner.store.prune_checkpoints(min(self.slot_steps) - self.runner.config.keep_checkpoints, referenced)

    def last_step(self, member: MemberEntry) -> int:
        return self.slot_steps[member.slot] - 1 if self.slot_steps else self.runner.step_done

    # -- persistence --------------------------------------------------------------------------
    def manifest_part(self, manifest: Manifest) -> Manifest:
        history: dict[str, dict[str, float | None]] = {str(s): {str(k): v for k, v in h.items()} for s, h in self.history.items()}
        objective_history = (
            {str(s): {str(k): v for k, v in h.items()} for s, h in self.objective_history.items()} if self.runner.front is not None else None
        )
        return replace(manifest, slot_steps=list(self.slot_steps), history=history, objective_history=objective_history)

    def load_fields(self, manifest: Manifest) -> None:
        self.slot_steps = list(manifest.slot_steps or [])
        self.history = {int(s): {int(k): clean_fitness(v) for k, v in h.items()} for s, h in (manifest.history or {}).items()}
        self.objective_history = {int(s): {int(k): v for k, v in h.items()} for s, h in (manifest.objective_history or {}).items()}

    def resumed_record(self) -> RunResumed:
        # Every committed result is kept: only steps beyond every slot's progress are voided.
        return RunResumed(from_step=max(self.slot_steps), mode="async", slot_steps=list(self.slot_steps))


SCHEDULE = AsyncSchedule

__all__ = ["AsyncSchedule", "SCHEDULE"]
