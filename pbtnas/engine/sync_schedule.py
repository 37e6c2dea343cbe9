"""Synchronous PBT-NAS (``mode: sync``, the paper's): generations with a barrier.

Per step: every member trains one step (barrier), the step is journaled in slot order and the
best-ever network kept; unless it was the last step, the bottom of the population is replaced by
children (or, for random-sp, every member is shrink-perturbed); then the runner commits the
manifest, which is the point a resume continues from. With ``lookahead`` the next step's jobs go
out before the barrier wherever exploitation cannot change them (docs/algorithm.md, Scheduling).
"""

from __future__ import annotations

import bisect
from dataclasses import replace
from pathlib import Path

from pbtnas import faults
from pbtnas.backends import Backend, TrainResult
from pbtnas.engine import seeding
from pbtnas.engine.runner import RunError, failed_error
from pbtnas.engine.schedule import Schedule
from pbtnas.errors import PbtnasError
from pbtnas.rundir.records import Manifest, MemberEntry, StepDone
from pbtnas.search.selection import clean_fitness, plan_generation


class SyncSchedule(Schedule):
    """Every member one step, exploit, commit, repeat; lookahead state lives here alone."""

    def __init__(self, runner):
        super().__init__(runner)
        self.step = 0  # the step being trained
        self._results: dict[int, TrainResult] = {}  # slot -> this step's result
        self._arrived: list[TrainResult] = []  # early results of this step not yet handled
        # slot -> (uid, result or None while running) of next-step jobs handed out (lookahead)
        self._ahead: dict[int, tuple[int, TrainResult | None]] = {}
        self._ahead_early: set[int] = set()  # those of them started before the step's last result
        self._early: set[int] = set()  # slots whose result of this step came from such a job
        self._recorded = 0  # slots 0.. of this step already journaled (lookahead)
        self._prepared: dict[int, tuple] = {}  # slot -> random-sp refresh done ahead of the barrier
        self._seconds: dict[int, float] = {}  # uid -> last measured step time (dispatch order)

    # -- the loop ---------------------------------------------------------------------------
    def begin(self, backend: Backend) -> None:
        r = self.runner
        r.progress.begin(r.step_done + 1)
        self.step = r.step_done + 1
        if self.step < r.config.steps:
            self._start_step(backend)

    def next_result(self, backend: Backend) -> TrainResult | None:
        if self.step >= self.runner.config.steps:
            return None
        return self._arrived.pop(0) if self._arrived else backend.next_result()

    def _start_step(self, backend: Backend) -> None:
        r = self.runner
        # Jobs of this step handed out during the last one count only for members still in their
        # slot; a replaced member's early result is dropped, its job's output never read.
        ahead = {slot: res for slot, (uid, res) in self._ahead.items() if uid == r.members[slot].uid}
        self._early = {slot for slot in ahead if slot in self._ahead_early}
        self._ahead, self._ahead_early = {}, set()
        self._submit_step(backend, [m for m in r.members if m.slot not in ahead], self.step)
        self._results = {}
        self._arrived = [res for res in ahead.values() if res is not None]

    def on_result(self, backend: Backend, result: TrainResult) -> bool:
        r, step, results = self.runner, self.step, self._results
        if result.step != step:
            if result.step == step + 1 and self._ahead.get(result.slot, (None, None))[0] == result.uid:
                self._ahead[result.slot] = (result.uid, result)  # a lookahead job finished early
            return False  # otherwise the early job of a member replaced since
        member = r.members[result.slot]
        if result.uid != member.uid or result.slot in results:
            return False  # the early job of a member that was replaced meanwhile
        if not r.settle_lost(backend, member, result):
            return False
        results[result.slot] = result
        if not result.error:
            self._seconds[result.uid] = result.seconds  # what its next step is expected to take
        r.progress.member_done(step, len(results), self._best_so_far(results), result)
        r._notify("on_member_result", step, member, result)
        if len(results) < len(r.members):
            self._look_ahead(backend, step, results)
            if r.config.lookahead:
                # the journal keeps slot order: record the run of slots that is complete
                while self._recorded in results:
                    self._record_one(r.members[self._recorded], results[self._recorded])
                    self._recorded += 1
            return False
        # the barrier: every member has this step's result
        failed = [res for res in results.values() if res.error and not res.diverged]
        if len(failed) == len(r.members):
            raise failed_error(r, failed, f"every member failed step {step}; first error")
        if all(res.diverged for res in results.values()):
            # nothing trained: delivering a network would mean delivering one that never learnt
            raise RunError(
                f"every member diverged at step {step} (first: {next(iter(results.values())).error}); "
                "lower the learning rate or check the data, then start again"
            )
        self._between_steps(backend, step, results)
        r.front_step_done(step)
        r.step_done = step
        return True

    def committed(self, backend: Backend) -> None:
        r, step = self.runner, self.step
        r.store.append(StepDone(step=step, best_fitness=r.best_fitness, population_fitness=[m.fitness for m in r.members]))
        self.prune(step)
        r._notify("on_step_end", step, r)
        faults.at("after-step", step)
        self.step += 1
        if self.step < r.config.steps:
            self._start_step(backend)

    # -- dispatch ---------------------------------------------------------------------------
    def _submit_step(self, backend: Backend, members: list[MemberEntry], step: int) -> None:
        """Hand out one step of ``members``; with ``lookahead`` the longest expected first (each
        member's last measured step time), so that the slowest do not start last. The order
        changes no result: every seed is fixed by (seed, purpose, uid/slot, step) and results are
        taken by slot."""
        for member in self._longest_first(members) if self.runner.config.lookahead else members:
            backend.submit(self.runner.job(member, step))

    def _longest_first(self, members: list[MemberEntry]) -> list[MemberEntry]:
        return sorted(members, key=lambda m: (-self._seconds.get(m.uid, 0.0), m.slot))

    def _submit_next(self, backend: Backend, members: list[MemberEntry], step: int, early: bool = False) -> None:
        """Hand out step ``step + 1`` of ``members`` before step ``step`` is committed; ``early``:
        before the step's last result came back (journaled as ``started_early``)."""
        members = [m for m in members if m.slot not in self._ahead]
        self._submit_step(backend, members, step + 1)
        for member in members:
            self._ahead[member.slot] = (member.uid, None)
            if early:
                self._ahead_early.add(member.slot)

    def _look_ahead(self, backend: Backend, step: int, results: dict[int, TrainResult]) -> None:
        """Fill idle workers while the slowest members finish: start the next step of members that
        are sure to survive this step's exploitation (at least as many finished members rank
        strictly below them as will be replaced). Survivors are not changed by exploitation, so the
        early job is exactly the job the next step would submit: same input, same seeds, same
        result. With random-sp every member is shrink-perturbed between steps; that depends on the
        member alone, so it is done here (once a worker is idle) and its next step starts early."""
        r = self.runner
        if not r.config.lookahead or step + 1 >= r.config.steps or r.front is not None:
            # with several objectives a finished member's rank can still fall (crowding distance
            # depends on every member of its front): none is sure to survive before the barrier
            return
        idle = backend.slots - backend.pending()
        if idle <= 0:
            return
        exploiting = r.operator.exploits_after(step, r.config.steps, r.config.exploit_every_first_half)
        refreshing = not exploiting and r.operator.refreshes_after(step)
        replaced = max(1, int(r.config.population * r.config.tau)) if exploiting else 0
        finished = {slot: clean_fitness(res.fitness) for slot, res in results.items()}
        ranked = sorted(finished.values())  # bisect counts the finished members strictly below
        sure = []
        for slot, fitness in finished.items():
            result = results[slot]
            if slot in self._ahead or result.error or not Path(result.state_out).exists():
                continue
            if bisect.bisect_left(ranked, fitness) >= replaced:
                sure.append(self._after(r.members[slot], result))
        sure = self._longest_first(sure)[:idle]
        if refreshing:
            sure = [self._prepare_refresh(m, step) for m in sure]
        self._submit_next(backend, sure, step, early=True)

    def _after(self, member: MemberEntry, result: TrainResult) -> MemberEntry:
        """``member`` as recording ``result`` leaves it (the input of its next step)."""
        if not Path(result.state_out).exists():
            return member
        return replace(member, checkpoint=self.runner.store.relative(Path(result.state_out)))

    def _between_steps(self, backend: Backend, step: int, results: dict[int, TrainResult]) -> None:
        """Record the step, exploit (or refresh), and, with ``lookahead``, hand out the next step
        before the commit: the longest survivors' jobs as soon as the plan is known, before any
        driver work (journal, checkpoint copies, children's fresh models), then the rest with the
        children. Only their start times differ from jobs handed out after the commit."""
        r = self.runner
        last = step >= r.config.steps - 1
        exploiting = not last and r.operator.exploits_after(step, r.config.steps, r.config.exploit_every_first_half)
        refreshing = not last and not exploiting and r.operator.refreshes_after(step)
        pipelined = r.config.lookahead and not last
        if r.front is None:
            scores: dict = {slot: clean_fitness(res.fitness) for slot, res in results.items()}
        else:  # a failed step's values are None: it ranks last
            scores = {slot: (None if res.error else res.values) for slot, res in results.items()}
        plans = self._plan(step, scores) if exploiting else []
        rest: list[MemberEntry] = []
        if pipelined and not refreshing:
            replaced = {plan.slot for plan in plans}
            survivors = self._longest_first([self._after(m, results[m.slot]) for m in r.members if m.slot not in replaced | set(self._ahead)])
            # all but the shortest go out now, to keep the workers busy while the driver records
            # the step and makes the children; the shortest go last, with the children, so that
            # the step's tail stays short
            cover = max(0, len(survivors) - backend.slots)
            self._submit_next(backend, survivors[:cover], step)
            rest = survivors[cover:]
        # a backend hands queued jobs to freed workers only when asked: ask between driver chores
        pump = backend.ready if pipelined else None
        self._record(step, results, pump)
        children = self._exploit(step, plans, pump) if exploiting else []
        if refreshing:
            self._refresh(step)
            rest = list(r.members)
        if pipelined:
            self._submit_next(backend, rest + children, step)

    # -- records ----------------------------------------------------------------------------
    def _best_so_far(self, results: dict[int, TrainResult]) -> float | None:
        values = [res.fitness for res in results.values()]
        if self.runner.best:
            values.append(self.runner.best.fitness)
        values = [clean_fitness(v) for v in values]
        return max(values) if values else None

    def _record(self, step: int, results: dict[int, TrainResult], pump=None) -> None:
        """Record a whole step in slot order (the slots journaled during the step excepted)."""
        for slot in sorted(results):
            if slot >= self._recorded:
                self._record_one(self.runner.members[slot], results[slot])
                if pump is not None and slot % 8 == 7:
                    pump()
        self._recorded = 0
        self.runner.draw_samples(step)

    def _record_one(self, member: MemberEntry, result: TrainResult) -> None:
        self.runner.record(member, result, started_early=True if member.slot in self._early else None)

    # -- exploitation -----------------------------------------------------------------------
    def _plan(self, step: int, scores: dict) -> list:
        r = self.runner
        return plan_generation(scores, r.config.tau, seeding.rng_for(r.config.seed, seeding.EXPLOIT, step), r.ranker)

    def _exploit(self, step: int, plans: list, pump=None) -> list[MemberEntry]:
        """Replace the planned slots by children of the current members; return the children."""
        r = self.runner
        load = r.loader()
        children = []
        for plan in plans:
            child = r.make_child(step, plan.slot, plan.primary, plan.donor, load)
            primary = r.members[plan.primary].uid
            if primary in self._seconds:  # the child's expected step time: its primary parent's
                self._seconds[child.uid] = self._seconds[primary]
            children.append(child)
            if pump is not None:
                pump()
        for child in children:
            r.members[child.slot] = child
        return children

    def _refresh(self, step: int) -> None:
        for member in self.runner.members:
            prepared = self._prepared.pop(member.slot, None)
            self.runner.refresh_member(member, step, prepared)

    def _prepare_refresh(self, member: MemberEntry, step: int) -> MemberEntry:
        """Shrink-perturb ``member`` (as recording leaves it) ahead of the barrier; its journal
        entry waits for :meth:`_refresh`, in slot order. Returns the member as it then stands."""
        self._prepared[member.slot] = prepared = self.runner.perturb(member, step)
        return replace(member, checkpoint=self.runner.store.relative(prepared[1]))

    def make_up(self, step: int) -> None:
        r = self.runner
        if r.operator.exploits_after(step, r.config.steps, r.config.exploit_every_first_half):
            self._exploit(step, self._plan(step, r.scores(r.members)))
        elif r.operator.refreshes_after(step):
            self._refresh(step)

    # -- the manifest -----------------------------------------------------------------------
    def load_fields(self, manifest: Manifest) -> None:
        r = self.runner
        if len(r.members) != r.config.population:
            raise PbtnasError(f"{r.store.manifest_path} holds {len(r.members)} members but the config says population {r.config.population}")

    def prune(self, step: int) -> None:
        referenced = {m.checkpoint for m in self.runner.members if m.checkpoint}
        self.runner.store.prune_checkpoints(step - self.runner.config.keep_checkpoints + 1, referenced)


SCHEDULE = SyncSchedule

__all__ = ["SyncSchedule", "SCHEDULE"]
