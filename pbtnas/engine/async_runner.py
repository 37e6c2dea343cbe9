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

import time

from pbtnas.backends import Backend, TrainResult
from pbtnas.engine import seeding
from pbtnas.engine.runner import Runner, SlotRecord
from pbtnas.rundir.store import load_member, save_member
from pbtnas.search.async_selection import plan_replacement
from pbtnas.search.final_selection import Contender
from pbtnas.search.selection import clean_fitness, should_exploit


class AsyncRunner(Runner):
    """Same interface as :class:`~pbtnas.engine.runner.Runner` (``start``/``run``/``resume``/``observers``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.slot_steps: list[int] = []  # per slot: the next step it trains (== steps when done)
        self.history: dict[int, dict[int, float]] = {}  # per slot: step -> fitness
        self._draw_now = False

    def start(self) -> "AsyncRunner":
        self.slot_steps = [0] * self.config.population
        self.history = {slot: {} for slot in range(self.config.population)}
        super().start()
        return self

    # -- the loop -----------------------------------------------------------------------------
    def _loop(self, backend: Backend) -> dict:
        """The asynchronous schedule: each result is handled (and its slot resubmitted) at once."""
        self.progress.begin(self.step_done + 1)
        # Least-advanced slots first: on a resume this recreates the queue order the run had,
        # so an in-process run resumed mid-way makes the same decisions as an unbroken one.
        for member in sorted(self.members, key=lambda m: (self.slot_steps[m.slot], m.slot)):
            if self.slot_steps[member.slot] < self.config.steps:
                backend.submit(self._job(member, self.slot_steps[member.slot]))
        ready = getattr(backend, "ready", None)
        uncommitted: list[tuple[TrainResult, SlotRecord]] = []
        while backend.pending():
            result = backend.next_result()
            member = self.members[result.slot]
            if result.lost_worker and result.attempt <= self.config.max_retries:
                self.store.append("member_retry", step=result.step, slot=result.slot, uid=result.uid, attempt=result.attempt + 1, reason=result.error)
                self.progress.note(f"member {result.uid} lost its worker; retry {result.attempt + 1}")
                backend.submit(self._job(member, result.step, attempt=result.attempt + 1))
                continue
            if result.lost_worker:
                self._keep_previous_state(member, result)
            trained = self._handle(result)
            if self.slot_steps[result.slot] < self.config.steps:
                backend.submit(self._job(self.members[result.slot], self.slot_steps[result.slot]))
            uncommitted.append((result, trained))
            # Results that are already waiting are handled before the commit: one manifest
            # write for the batch keeps the driver ahead of many fast workers.
            if ready is not None and ready() > 0 and len(uncommitted) < self.config.population:
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
        self._record(step, {slot: result})  # journal, fitness, checkpoint, best (shared with sync)
        member = self.members[slot]
        self.history.setdefault(slot, {})[step] = member.fitness
        self.slot_steps[slot] = step + 1
        done_in_step = sum(1 for s in self.slot_steps if s > step)
        self.progress.member_done(step, done_in_step, self.best and self.best["fitness"], result)
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
        p1, p2 = self.members[plan.primary], self.members[plan.donor]
        primary = load_member(self.store.absolute(p1.checkpoint))[:2]
        donor = primary if plan.donor == plan.primary else load_member(self.store.absolute(p2.checkpoint))[:2]
        child_rng = seeding.rng_for(self.config.seed, seeding.EXPLOIT, step, 1 + slot)
        genome, state, record = self.algorithm.make_child(self.task, primary, donor, child_rng)
        uid = self.next_uid
        self.next_uid += 1
        path = self.store.member_path(step, uid)
        save_member(path, genome, state, uid, {"step": step, "born": True})
        replaced = self.members[slot]
        record.primary, record.donor = p1.uid, (None if record.details.get("self_donor") else p2.uid)
        parents = [p1.uid] if record.donor is None else [p1.uid, p2.uid]
        self.store.append(
            "child_created",
            step=step,
            slot=slot,
            uid=uid,
            parents=parents,
            replaced_uid=replaced.uid,
            genome=genome,
            mode="async",
            parent_steps=[self.slot_steps[plan.primary] - 1, self.slot_steps[plan.donor] - 1],
            **record.to_dict(),
        )
        self.store.append("member_replaced", step=step, slot=slot, old_uid=replaced.uid, new_uid=uid, old_fitness=replaced.fitness)
        child = SlotRecord(
            slot=slot, uid=uid, genome=genome, checkpoint=self.store.relative(path), init_seed=record.seed or 0, born_step=step, parents=parents
        )
        self.members[slot] = child
        self._notify("on_child", step, child, record)

    def _refresh_one(self, member: SlotRecord, step: int) -> None:
        genome, state, _ = load_member(self.store.absolute(member.checkpoint))
        rng = seeding.rng_for(self.config.seed, seeding.EXPLOIT, step, 1 + member.slot)
        state, record = self.algorithm.refresh(self.task, genome, state, rng)
        path = self.store.member_path(step, member.uid, "-sp")
        save_member(path, genome, state, member.uid, {"step": step, "refreshed": True})
        member.checkpoint = self.store.relative(path)
        self.store.append("member_refreshed", step=step, slot=member.slot, uid=member.uid, **record.to_dict())

    def _advance_step_done(self) -> None:
        """A step counts as done once every slot has passed it (for status, reports, observers)."""
        while self.step_done + 1 < min(self.slot_steps):
            self.step_done += 1
            step = self.step_done
            self._write_manifest()
            self.store.append(
                "step_done",
                step=step,
                best_fitness=self.best and self.best["fitness"],
                population_fitness=[self.history[m.slot].get(step) for m in self.members],
                mode="async",
            )
            self._draw_now = True
            self._draw_samples(step)
            self._prune(step)
            self._notify("on_step_end", step, self)

    def _draw_samples(self, step: int) -> None:
        # The shared _record draws after every result; in async mode draw once per finished step.
        if self._draw_now:
            self._draw_now = False
            super()._draw_samples(step)

    def _prune(self, step: int) -> None:
        # Checkpoints a member still points at (its current state, the input of its running step)
        # are always kept; other folders older than the slowest slot's window go.
        referenced = {m.checkpoint for m in self.members if m.checkpoint}
        self.store.prune_checkpoints(min(self.slot_steps) - self.config.keep_checkpoints, referenced)

    # -- persistence --------------------------------------------------------------------------
    def _write_manifest(self, finished: bool = False) -> None:
        self.store.write_manifest(
            {
                "mode": "async",
                "step_done": self.step_done,
                "steps": self.config.steps,
                "next_uid": self.next_uid,
                "members": [m.to_dict() for m in self.members],
                "slot_steps": list(self.slot_steps),
                "history": {str(s): {str(k): v for k, v in h.items()} for s, h in self.history.items()},
                "best": self.best,
                "top": [c.to_dict() for c in self.top],
                "elapsed_s": round(self.elapsed_before + time.time() - self._started, 3),
                "finished": finished,
            }
        )

    def _load_manifest(self) -> None:
        manifest = self.store.read_manifest()
        if manifest.get("mode") != "async":
            from pbtnas.errors import PbtnasError

            raise PbtnasError(f"{self.store.manifest_path} was written by a synchronous run; resume it without mode async")
        self.members = [SlotRecord(**m) for m in manifest["members"]]
        self.top = [Contender(**c) for c in manifest.get("top", [])]
        self.slot_steps = list(manifest["slot_steps"])
        self.history = {int(s): {int(k): clean_fitness(v) for k, v in h.items()} for s, h in manifest["history"].items()}
        self.step_done = manifest["step_done"]
        self.next_uid = manifest["next_uid"]
        self.best = manifest.get("best")
        self.elapsed_before = manifest.get("elapsed_s", 0.0)
        if not manifest.get("finished"):
            # Every committed result is kept: only steps beyond every slot's progress are voided.
            self.store.append("run_resumed", from_step=max(self.slot_steps), mode="async", slot_steps=list(self.slot_steps))


__all__ = ["AsyncRunner"]
