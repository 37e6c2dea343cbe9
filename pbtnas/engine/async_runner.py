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

from pbtnas.backends import Backend, TrainResult
from pbtnas.engine import seeding
from pbtnas.engine.runner import Runner, SlotRecord
from pbtnas.search.async_selection import plan_replacement
from pbtnas.search.selection import clean_fitness, should_exploit


class AsyncRunner(Runner):
    """Same interface as :class:`~pbtnas.engine.runner.Runner` (``start``/``run``/``resume``/``observers``)."""

    schedule = "async"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.slot_steps: list[int] = []  # per slot: the next step it trains (== steps when done)
        self.history: dict[int, dict[int, float]] = {}  # per slot: step -> fitness

    def _populate(self) -> None:
        self.slot_steps = [0] * self.config.population
        self.history = {slot: {} for slot in range(self.config.population)}
        super()._populate()

    # -- the loop -----------------------------------------------------------------------------
    def _loop(self, backend: Backend) -> dict:
        """The asynchronous schedule: each result is handled (and its slot resubmitted) at once."""
        self.progress.begin(self.step_done + 1)
        # Least-advanced slots first: on a resume this recreates the queue order the run had,
        # so an in-process run resumed mid-way makes the same decisions as an unbroken one.
        for member in sorted(self.members, key=lambda m: (self.slot_steps[m.slot], m.slot)):
            if self.slot_steps[member.slot] < self.config.steps:
                backend.submit(self._job(member, self.slot_steps[member.slot]))
        uncommitted: list[tuple[TrainResult, SlotRecord]] = []
        while backend.pending():
            result = backend.next_result()
            if not self._settle_lost(backend, self.members[result.slot], result):
                continue
            trained = self._handle(result)
            if self.slot_steps[result.slot] < self.config.steps:
                backend.submit(self._job(self.members[result.slot], self.slot_steps[result.slot]))
            uncommitted.append((result, trained))
            # Results that are already waiting are handled before the commit: one manifest
            # write for the batch keeps the driver ahead of many fast workers.
            if backend.ready() > 0 and len(uncommitted) < self.config.population:
                continue
            self._write_manifest()  # the commit point of these results
            for done, trained in uncommitted:
                self._notify("on_member_result", done.step, trained, done)
            uncommitted.clear()
            self._advance_step_done()
        return self._finish()

    def _handle(self, result: TrainResult) -> SlotRecord:
        """Record one finished step and replace the member at once if it is in the bottom."""
        step, slot = result.step, result.slot
        self._check_failures(result)
        self._record_one(self.members[slot], result)  # journal, fitness, checkpoint, best (shared with sync)
        member = self.members[slot]
        self.history.setdefault(slot, {})[step] = float("-inf") if member.fitness is None else member.fitness
        self.slot_steps[slot] = step + 1
        done_in_step = sum(1 for s in self.slot_steps if s > step)
        self.progress.member_done(step, done_in_step, self.best_fitness, result)
        if step < self.config.steps - 1:
            if self.algorithm.exploits and should_exploit(step, self.config.steps, self.config.exploit_every_first_half):
                self._maybe_replace(slot, step)
            elif self.algorithm.refresh_every_step:
                self._refresh_one(self.members[slot], step)
        return member

    def _maybe_replace(self, slot: int, step: int) -> None:
        rng = seeding.rng_for(self.config.seed, seeding.EXPLOIT, step, 1 + slot, 0)
        plan = plan_replacement(slot, step, self.history, self.config.population, self.config.tau, rng)
        if plan is None:
            return
        parent_steps = [self.slot_steps[plan.primary] - 1, self.slot_steps[plan.donor] - 1]
        self.members[slot] = self._make_child(step, slot, plan.primary, plan.donor, self._loader(), mode="async", parent_steps=parent_steps)

    def _make_up(self, step: int) -> None:
        """On reopening a finished run for more steps: each slot's last result is handled, in slot
        order, as it would have been had it not been the last (replaced if in the bottom, or
        refreshed)."""
        for slot in range(len(self.members)):
            if self.algorithm.exploits and should_exploit(step, self.config.steps, self.config.exploit_every_first_half):
                self._maybe_replace(slot, step)
            elif self.algorithm.refresh_every_step:
                self._refresh_one(self.members[slot], step)

    def _advance_step_done(self) -> None:
        """A step counts as done once every slot has passed it (for status, reports, observers)."""
        while self.step_done + 1 < min(self.slot_steps):
            self.step_done += 1
            step = self.step_done
            self._write_manifest()
            self.store.append(
                "step_done",
                step=step,
                best_fitness=self.best_fitness,
                population_fitness=[self.history[m.slot].get(step) for m in self.members],
                mode="async",
            )
            self._draw_samples(step)
            self._prune(step)
            self._notify("on_step_end", step, self)

    def _prune(self, step: int) -> None:
        # Checkpoints a member still points at (its current state, the input of its running step)
        # are always kept; other folders older than the slowest slot's window go.
        referenced = {m.checkpoint for m in self.members if m.checkpoint}
        self.store.prune_checkpoints(min(self.slot_steps) - self.config.keep_checkpoints, referenced)

    # -- persistence --------------------------------------------------------------------------
    def _manifest_fields(self) -> dict:
        return {
            "slot_steps": list(self.slot_steps),
            "history": {str(s): {str(k): v for k, v in h.items()} for s, h in self.history.items()},
        }

    def _load_fields(self, manifest: dict) -> None:
        self.slot_steps = list(manifest["slot_steps"])
        self.history = {int(s): {int(k): clean_fitness(v) for k, v in h.items()} for s, h in manifest["history"].items()}

    def _resumed_fields(self) -> dict:
        # Every committed result is kept: only steps beyond every slot's progress are voided.
        return {"from_step": max(self.slot_steps), "mode": "async", "slot_steps": list(self.slot_steps)}


__all__ = ["AsyncRunner"]
