"""The one loop that wires task, algorithm, schedule, backend and store.

The :class:`Runner` owns the run: its directory, the population, the best network, the journal.
Its loop is the same for every schedule (:meth:`Runner._loop`): the schedule
(:mod:`pbtnas.engine.schedule`, named in :mod:`pbtnas.search.schedules`) gets each result, records
it through the runner's services and decides what follows; the runner writes the manifest
atomically whenever the schedule says so, which is the commit point a resume continues from.
"""

from __future__ import annotations

import importlib
import json
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from pbtnas.backends import Backend, TrainJob, TrainResult, make_backend
from pbtnas.config import RunConfig, config_from_dict
from pbtnas.engine import seeding
from pbtnas.engine.divergence import diverged_fraction
from pbtnas.engine.front import Front
from pbtnas.engine.observers import HOOKS
from pbtnas.engine.progress import Progress
from pbtnas.engine.resume_policy import ResumePlan, plan_resume
from pbtnas.engine.schedule import Schedule
from pbtnas.errors import ConfigError, PbtnasError, error_headline
from pbtnas.rundir.atomic import atomic_write_bytes, atomic_write_json, wait_for_syncs
from pbtnas.rundir.records import (
    BestRecord,
    BestUpdated,
    CheckpointSkipped,
    ChildCreated,
    ConfigChanged,
    FinalReevaluated,
    JournalDamaged,
    LockTakenOver,
    Manifest,
    MemberEntry,
    MemberFailed,
    MemberRefreshed,
    MemberReplaced,
    MemberRetry,
    MemberTrained,
    Record,
    RunExtended,
    RunFinished,
    RunStarted,
    Summary,
    fitness_of,
)
from pbtnas.rundir.runinfo import run_info_of, write_run_info
from pbtnas.rundir.store import RunStore, damaged_best, load_member, save_member
from pbtnas.search.algorithms import Operator
from pbtnas.search.final_selection import Contender, admit, choose
from pbtnas.search.objectives import check_names, is_multi, parse_constraints, parse_objectives, slot_ranker, value_names
from pbtnas.search.schedules import SCHEDULES, schedule_name
from pbtnas.search.selection import clean_fitness
from pbtnas.search.state import state_mismatch
from pbtnas.tasks import BUILTIN, build_task, import_roots, importable_elsewhere, portable_task_config, start_dir_for
from pbtnas.tasks.base import Task
from pbtnas.tasks.devices import prepare_to_train
from pbtnas.tasks.trust import check_run_task


class RunError(PbtnasError):
    """The run cannot go on (e.g. every member failed the same step)."""


def schedule_class(config: dict) -> type[Schedule]:
    """The :class:`~pbtnas.engine.schedule.Schedule` a config (as a dict) runs under, from the registry."""
    entry = SCHEDULES[schedule_name(config.get("algorithm"), config.get("mode"))]
    return importlib.import_module(entry.module).SCHEDULE


class Runner:
    """Runs (or resumes) one search in one run directory, under the schedule its config names
    (synchronous, asynchronous with ``mode: async``, or the one ``algorithm: bohb`` brings)."""

    def __init__(self, config: RunConfig, run_dir: str | Path, backend: Backend | None = None, observers: list | None = None, progress: bool = True):
        kind = schedule_class({"algorithm": config.algorithm, "mode": config.mode})
        self.operator: Operator = kind.make_operator(config)
        self.config = config
        self.store = RunStore(run_dir)
        # A task file is recorded by its absolute path, so resume, report and export find it from
        # any working directory (and workers started elsewhere receive the same name).
        config.task = portable_task_config(config.task)
        # The folder the run starts from (a resume: the one recorded then) is importable here and
        # in every worker, as is the task file's: task.env=my_envs:Name-v0, a task file's imports.
        self.start_dir = start_dir_for(run_dir)
        self.task: Task = build_task(config.task)
        self._task_config = config.task
        self._task_roots = import_roots(config.task, self.start_dir)
        self._backend = backend
        self.observers = list(observers or [])
        self.progress = Progress(config.steps, config.population, enabled=progress)
        self.members: list[MemberEntry] = []
        self.step_done = -1
        self.next_uid = 0
        self.best: BestRecord | None = None
        self.top: list[Contender] = []  # with final_selection top-k-reevaluated: the best members so far
        self.objectives, self.constraints = parse_objectives(config.objectives), parse_constraints(config.constraints)
        #: several objectives or constraints (docs/multi-objective.md): the values each member
        #: reports, the front kept; None and empty for a single-objective run, which is unchanged
        self.front: Front | None = Front(self.store, self.objectives, self.constraints) if is_multi(self.objectives, self.constraints) else None
        self.value_names: list[str] = value_names(self.objectives, self.constraints) if self.front is not None else []
        self._consecutive_failures = 0  # schedules without a barrier: failures in a row
        self.elapsed_before = 0.0
        self._started = time.time()
        self.had_finished = False  # resume: the run had delivered and is not trained again
        self.changes: list[tuple[str, Any, Any]] = []  # resume: the config changes it made (key, old, new)
        self.schedule: Schedule = kind(self)

    # -- entry points -------------------------------------------------------------------------
    @classmethod
    def resume(
        cls,
        run_dir: str | Path,
        backend: Backend | None = None,
        overrides: dict | None = None,
        progress: bool = True,
        skip_damaged: bool = False,
        remember_check: bool = False,
        plan: ResumePlan | None = None,
    ) -> "Runner":
        """Continue ``run_dir`` (holding its lock until :meth:`run` ends). The manifest, its
        genomes, the checkpoints it needs and ``best/member.pt`` are verified first; a damaged one
        stops here with one error naming it, unless ``skip_damaged``: then that member restarts
        from fresh weights, or the best network is taken from the surviving members (journaled).
        ``remember_check`` applies when the start is redone (see :attr:`remember_check`).

        ``plan`` (what :func:`resume_runner` passes, after :func:`~pbtnas.engine.resume_policy.plan_resume`
        accepted it) also checks what training needs (device, data), then writes the plan's
        changes to ``config.yaml`` and journals them; a finished run whose budget grew is reopened
        (:meth:`_reopen`). ``overrides`` alone change this process's config unchecked and unrecorded."""
        store = RunStore(run_dir)
        data = store.read_config()
        data.update(plan.overrides if plan is not None else overrides or {})
        runner = cls(config_from_dict(data, where=f"{store.config_path}"), run_dir, backend, progress=progress)
        runner.remember_check = remember_check
        stale = runner.store.lock()
        try:
            if not runner.store.manifest_path.exists():
                runner.start()  # the start was cut before its first commit: start it again
                if plan is not None:  # start() wrote config.yaml with the changes
                    runner._journal_changes(plan)
                return runner
            reopening = runner._reopening()
            # a run that trains again is verified like an unfinished one: refused, nothing written
            skipped = _verify_checkpoints(runner.store, skip_damaged, runner.task, reopening)
            damaged_lines = _check_journal(runner.store, reopening)
            runner.had_finished = runner.store.finished() and not reopening
            if plan is not None and not runner.had_finished:
                # what 'run' checks before it starts (device, data, environment, renderer) may
                # have changed since: fail here with one line rather than in every worker
                prepare_to_train(runner.config, runner.task)
            if stale:
                runner.store.append(LockTakenOver(previous=stale))
            if damaged_lines:
                runner.store.append(JournalDamaged(skipped_lines=len(damaged_lines), lines=damaged_lines[:20]))
            if plan is not None and plan.changes:
                import yaml

                atomic_write_bytes(store.config_path, yaml.safe_dump(plan.config, sort_keys=False).encode())
                runner._journal_changes(plan)
            if reopening:
                skipped = runner._reopen(skipped)
            runner._load_manifest()
            _restart_damaged(runner, skipped)
        except BaseException:
            runner.store.unlock()
            raise
        return runner

    def _journal_changes(self, plan: ResumePlan) -> None:
        if plan.changes:
            self.store.append(ConfigChanged(changes={key: {"from": old, "to": new} for key, old, new in plan.changes}))
        self.changes = list(plan.changes)

    def start(self) -> "Runner":
        """Create the run directory and the initial population (every schedule the same way up to
        :meth:`Schedule.populate <pbtnas.engine.schedule.Schedule.populate>`)."""
        prepare_to_train(self.config, self.task)
        if self.front is not None:
            has_input = self.task.example_input is not None
            check_names(self.value_names, tuple(self.task.metric_names), has_input, type(self.task).__name__)
        self._check_task()
        if self.selection == "top-k-reevaluated":
            self.task.check_selection_split()
        info = run_info_of(self.task, self.config.task, self.start_dir)  # what status and report show, as data
        self.store.create(self.config.to_dict())  # takes the run directory's lock
        write_run_info(self.store.root, info)
        started = RunStarted(config=self.config.to_dict(), task=self.task.describe(), space=self.task.space.name, genes=len(self.task.space))
        self.store.append(self.schedule.run_started_part(started))
        self.schedule.populate()
        self._write_manifest()
        return self

    def _check_task(self) -> None:
        """The task contract, once in the driver before the run directory exists (a broken task
        is one error line and leaves nothing behind). With :attr:`remember_check` a user's task
        that passed the same check before (same files, options and versions) skips it
        (:mod:`pbtnas.tasks.check_memo`); :attr:`check_outcome` says which happened."""
        from pbtnas.tasks.check_memo import check_once

        if self.config.backend != "inprocess" and not importable_elsewhere(self.config.task["name"]):
            raise ConfigError(
                f"task {self.config.task['name']!r} is defined in an interactive session, which "
                "worker processes cannot import: put it in a .py file, or use backend: inprocess"
            )
        builtin = self.config.task["name"] in BUILTIN
        # members train in worker processes of their own unless in-process: check that the task
        # evaluates the same in a freshly started one (once per task and process)
        fresh = not builtin and self.config.backend != "inprocess"
        self.check_outcome = check_once(
            self.task, seed=self.config.seed, train=False, evaluate=not builtin, fresh_process=fresh, recall=self.remember_check
        )
        self.check_seconds = self.check_outcome.seconds

    def run(self) -> dict:
        """Train until the budget is spent (from wherever the manifest stands); return the summary.
        The same for every schedule: a finished run returns its summary, the backend is made and
        closed, the run directory's lock released however the run ends; :meth:`_loop` differs."""
        if not self.schedule.ready():
            raise RuntimeError("call start() or resume() first")
        summary = self.store.read_summary()
        if summary is not None and summary.get("finished"):
            self.store.unlock()
            return summary
        try:
            backend = self._backend or make_backend(self.config)
        except BaseException:
            self.store.unlock()
            raise
        backend.listener = self._backend_event
        try:
            return self._loop(backend)
        finally:
            if self._backend is None:
                backend.close()
            self.store.unlock()

    def _backend_event(self, record: Record, message: str) -> None:
        """What a backend did on its own (e.g. ``pool_resized``): into the journal and onto the console."""
        self.store.append(record)
        if message:
            self.progress.note(message)

    def _loop(self, backend: Backend) -> dict:
        """The one driver loop, the same for every schedule: the schedule submits its first jobs;
        each result goes to it, and it records the result and decides what follows (continue,
        replace by a child, stop, start a trial), submitting those jobs; whenever it says so the
        manifest is written (the commit point a resume continues from) and it is told."""
        schedule = self.schedule
        schedule.begin(backend)
        while (result := schedule.next_result(backend)) is not None:
            if schedule.on_result(backend, result):
                self._write_manifest()
                schedule.committed(backend)
        schedule.end()
        return self._finish()

    def check_failures(self, result: TrainResult) -> None:
        """Schedules without a barrier stop after ``population`` member failures in a row (the
        synchronous one stops when every member of a step failed)."""
        if result.error and not result.diverged:
            self._consecutive_failures += 1
            if self._consecutive_failures >= self.config.population:
                raise failed_error(self, [result], f"{self._consecutive_failures} member steps in a row failed; last error")
        else:
            self._consecutive_failures = 0

    def settle_lost(self, backend: Backend, member: MemberEntry, result: TrainResult) -> bool:
        """Every schedule's answer to a result whose worker was lost: the same job again while
        retries are left (False: wait for it), else the member keeps its previous state and the
        result stands as a failure (True, as for every other result)."""
        if not result.lost_worker:
            return True
        if result.attempt <= self.config.max_retries:
            self.store.append(
                MemberRetry(
                    step=result.step,
                    slot=result.slot,
                    uid=result.uid,
                    trial=self.schedule.trial_of(member),
                    attempt=result.attempt + 1,
                    reason=result.error,
                )
            )
            self.progress.note(f"{self.schedule.unit} {result.uid} lost its worker; retry {result.attempt + 1}")
            backend.submit(self.job(member, result.step, attempt=result.attempt + 1))
            return False
        self._keep_previous_state(member, result)
        return True

    #: what the progress notes call a member ("trial" for bohb)
    unit = "member"
    #: skip the start's task check when this exact task passed it before (``pbtnas run``/``resume``
    #: set it; the library and ``compare`` check every run)
    remember_check = False
    #: how the start's task check went (None until :meth:`start` ran it)
    check_outcome: Any = None

    # -- one step -----------------------------------------------------------------------------
    def job(self, member: MemberEntry, step: int, attempt: int = 1) -> TrainJob:
        out = self.store.member_path(step, member.uid)
        out.parent.mkdir(parents=True, exist_ok=True)
        return TrainJob(
            slot=member.slot,
            uid=member.uid,
            step=step,
            genome=member.genome,
            state_in=str(self.store.absolute(member.checkpoint)) if member.checkpoint else None,
            state_out=str(out.resolve()),
            init_seed=member.init_seed,
            train_seed=seeding.int_seed(self.config.seed, seeding.TRAIN, member.uid, step),
            eval_seed=seeding.int_seed(self.config.seed, seeding.EVAL, step),
            task_config=self._task_config,
            task_roots=self._task_roots,
            threads=self.config.threads_per_member,
            attempt=attempt,
            values=list(self.value_names),
        )

    def journal_failed(self, member: MemberEntry, result: TrainResult) -> None:
        """Journal ``member_failed`` for a step that failed for good, with the worker's traceback."""
        self.store.append(
            MemberFailed(
                step=result.step,
                slot=result.slot,
                uid=result.uid,
                trial=self.schedule.trial_of(member),
                attempts=result.attempt,
                reason=result.error,
            )
        )

    def _keep_previous_state(self, member: MemberEntry, result: TrainResult) -> None:
        """A member whose retries ran out keeps its last good checkpoint and fitness -inf."""
        self.journal_failed(member, result)
        if member.checkpoint and not Path(result.state_out).exists():
            shutil.copyfile(self.store.absolute(member.checkpoint), result.state_out)

    def record(self, member: MemberEntry, result: TrainResult, member_steps: int | None = None, started_early: bool | None = None) -> None:
        """One finished member step, the same in every schedule: fitness and checkpoint, the
        ``member_trained`` event, the best network so far and the kept top k. ``member_steps``
        (bohb: the budget spent) and ``started_early`` (lookahead) go into the event as given."""
        step = result.step
        member.fitness = clean_fitness(result.fitness)
        if Path(result.state_out).exists():
            member.checkpoint = self.store.relative(Path(result.state_out))
        if result.error:
            member.failures += 1
        values = self._values(member, result)
        self.store.append(
            MemberTrained(
                step=step,
                slot=member.slot,
                uid=member.uid,
                trial=self.schedule.trial_of(member),
                fitness=member.fitness,
                metrics=result.metrics,
                seconds=round(result.seconds, 3),
                worker=result.worker,
                attempt=result.attempt,
                peak_rss_mb=round(result.peak_rss_mb, 1),
                member_steps=member_steps,
                started_early=started_early,
                error=error_headline(result.error) if result.error else None,
                diverged=result.diverged if result.error else None,
                objectives=values,
            )
        )
        if result.error:
            self.progress.note(f"{self.schedule.unit} {member.uid} failed at step {step}: {error_headline(result.error)}")
        if member.fitness > float("-inf") and (self.best is None or member.fitness > self.best.fitness):
            self.best = BestRecord(uid=member.uid, fitness=member.fitness, step=step, genome=member.genome, slot=member.slot)
            self.store.save_best(Path(result.state_out), self.best)
            self.store.append(BestUpdated(step=step, uid=member.uid, fitness=member.fitness))
        if self.selection == "top-k-reevaluated" and not result.error:
            self._keep_if_top(member, step, Path(result.state_out))
        if self.front is not None and values is not None:
            self.front.offer(member.uid, member.slot, step, member.genome, values, Path(result.state_out))

    def _values(self, member: MemberEntry, result: TrainResult) -> dict | None:
        """A run with several objectives: the member's values from this result (None for a
        failed step, which ranks last), kept on the member for ranking; else None."""
        if self.front is None:
            return None
        values = None if result.error or result.values is None else {k: float(v) for k, v in result.values.items()}
        member.objectives = values
        return values

    @property
    def ranker(self):
        """How schedules order slots: by the fitness, or by the objectives (non-dominated sorting,
        crowding distance, constraints) in a run with several."""
        from pbtnas.search.selection import rank

        return rank if self.front is None else slot_ranker(self.objectives, self.constraints)

    def scores(self, members: list[MemberEntry]) -> dict[int, Any]:
        """Per slot what :attr:`ranker` orders: the last fitness, or the last values."""
        if self.front is None:
            return {m.slot: fitness_of(m) for m in members}
        return {m.slot: m.objectives for m in members}

    def front_step_done(self, step: int) -> None:
        """After ``step`` (before its commit): the front's hypervolume, in a multi-objective run."""
        if self.front is not None:
            self.front.step_done(step)

    @property
    def best_fitness(self) -> float | None:
        """The best-ever fitness so far (None before the first finite one)."""
        return None if self.best is None else self.best.fitness

    @property
    def selection(self) -> str:
        """How the delivered network is chosen (the config's, or the task's default)."""
        return self.config.final_selection or self.task.default_final_selection

    def _keep_if_top(self, member: MemberEntry, step: int, checkpoint: Path) -> None:
        """Keep a copy of the member's checkpoint while it is among the reevaluate_top_k best."""
        path = f"best/top/uid{member.uid:05d}.pt"
        candidate = Contender(uid=member.uid, fitness=fitness_of(member), step=step, genome=member.genome, checkpoint=path)
        kept, dropped = admit(self.top, candidate, self.config.reevaluate_top_k)
        if candidate in kept:
            target = self.store.absolute(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(target, checkpoint.read_bytes())
        for old in dropped:
            if all(c.uid != old.uid for c in kept):
                self.store.absolute(old.checkpoint).unlink(missing_ok=True)
        self.top = kept

    def draw_samples(self, step: int) -> None:
        draw = self.task.sample_grid
        if draw is None:  # the task draws no samples
            return
        alive = [m for m in self.members if m.fitness is not None and m.fitness > float("-inf")]
        if not alive:
            return
        leader = max(alive, key=lambda m: (m.fitness, -m.slot))
        genome, state, _ = load_member(self.store.absolute(leader.checkpoint))
        # named by the step it follows as people count steps (from 1), as the report captions it
        path = self.store.root / "samples" / f"after_step_{step + 1:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        draw(genome, state, str(path), seeding.int_seed(self.config.seed, seeding.SAMPLES))

    # -- exploitation -------------------------------------------------------------------------
    # -- children and refreshes: the same for every schedule -----------------------------------
    def loader(self):
        """(genome, state) of a slot's current member, each checkpoint read once."""
        cache: dict[int, tuple] = {}

        def load(slot: int) -> tuple:
            if slot not in cache:
                cache[slot] = load_member(self.store.absolute(self.members[slot].checkpoint))[:2]
            return cache[slot]

        return load

    def make_child(
        self, step: int, slot: int, primary: int, donor: int, load, mode: str | None = None, parent_steps: list[int] | None = None
    ) -> MemberEntry:
        """The child of the members in slots ``primary`` and ``donor`` that is to replace the
        member in ``slot`` (seeded by step and slot), saved and journaled; the caller puts it in
        its slot. Every schedule makes its children here; ``mode`` and ``parent_steps`` (async:
        the step each parent's fitness is from) go into ``child_created`` as given."""
        p1, p2 = self.members[primary], self.members[donor]
        child_rng = seeding.rng_for(self.config.seed, seeding.EXPLOIT, step, 1 + slot)
        genome, state, record = self.operator.make_child(self.task, load(primary), load(donor), child_rng)
        uid = self.next_uid
        self.next_uid += 1
        path = self.store.member_path(step, uid)
        save_member(path, genome, state, uid, {"step": step, "born": True}, durable=False)  # on disk before the next commit
        replaced = self.members[slot]
        record.primary, record.donor = p1.uid, (None if record.single_parent else p2.uid)
        parents = [p1.uid] if record.donor is None else [p1.uid, p2.uid]
        self.store.append(
            ChildCreated(
                step=step,
                slot=slot,
                uid=uid,
                parents=parents,
                replaced_uid=replaced.uid,
                genome=genome,
                mode=mode,
                parent_steps=parent_steps,
                **ChildCreated.attrs(record.to_dict()),  # the operator's own fields (docs/journal.md)
            )
        )
        self.store.append(MemberReplaced(step=step, slot=slot, old_uid=replaced.uid, new_uid=uid, old_fitness=replaced.fitness))
        child = MemberEntry(
            slot=slot, uid=uid, genome=genome, checkpoint=self.store.relative(path), init_seed=record.seed or 0, born_step=step, parents=parents
        )
        self._notify("on_child", step, child, record)
        return child

    def refresh_member(self, member: MemberEntry, step: int, prepared: tuple | None = None) -> None:
        """Shrink-perturb ``member`` (random-sp) and journal it; ``prepared``: the perturbation a
        schedule did ahead (:meth:`perturb`), of which only the journal entry is left to write."""
        if prepared is None or prepared[0] != member.uid:
            prepared = self.perturb(member, step)
        _, path, record = prepared
        member.checkpoint = self.store.relative(path)
        self.store.append(MemberRefreshed(step=step, slot=member.slot, uid=member.uid, **MemberRefreshed.attrs(record.to_dict())))

    def perturb(self, member: MemberEntry, step: int) -> tuple:
        """(uid, path, record) of ``member`` shrink-perturbed for step ``step``, saved, not journaled."""
        genome, state, _ = load_member(self.store.absolute(member.checkpoint))
        rng = seeding.rng_for(self.config.seed, seeding.EXPLOIT, step, 1 + member.slot)
        state, record = self.operator.refresh(self.task, genome, state, rng)
        path = self.store.member_path(step, member.uid, "-sp")
        save_member(path, genome, state, member.uid, {"step": step, "refreshed": True}, durable=False)
        return member.uid, path, record

    # -- persistence --------------------------------------------------------------------------
    def _write_manifest(self, finished: bool = False) -> None:
        wait_for_syncs()  # the files it names (and the journal) reach the disk before it does
        manifest = Manifest(
            mode=self.schedule.recorded_mode,
            step_done=self.step_done,
            steps=self.config.steps,
            next_uid=self.next_uid,
            members=list(self.members),
            best=self.best,
            top=list(self.top),
            pareto=self.front.to_dict() if self.front is not None else None,
            elapsed_s=round(self.elapsed_before + time.time() - self._started, 3),
            finished=finished,
        )
        self.store.write_manifest(self.schedule.manifest_part(manifest))

    def _load_manifest(self) -> None:
        manifest = self.store.read_manifest_record()
        self._load_state(manifest)
        if not manifest.finished:
            self.store.append(self.schedule.resumed_record())

    def _load_state(self, manifest: Manifest) -> None:
        """The population and everything the run keeps, as the manifest committed them."""
        if manifest.mode != self.schedule.recorded_mode:
            written, wanted = manifest.mode or "synchronous", self.schedule.recorded_mode or "synchronous"
            raise PbtnasError(f"{self.store.manifest_path} was written by a {written} run, not a {wanted} one: resume it as it was started")
        # a field an older manifest lacked is written from now on, with the value the run keeps
        self.members = [replace(m, absent=frozenset()) for m in manifest.members]
        self.top = list(manifest.top)
        self.step_done = manifest.step_done
        self.next_uid = manifest.next_uid
        self.best = manifest.best
        if self.front is not None:
            self.front.load(manifest.pareto)
        self.elapsed_before = manifest.elapsed_s
        self.schedule.load_fields(manifest)

    # -- more steps for a finished run -------------------------------------------------------
    def _reopening(self) -> bool:
        """Whether this resume reopens a finished run: the budget (``config.steps``) grew past the
        steps it delivered after, or a reopen committed but was cut before it removed the earlier
        delivery's summary (which then names fewer steps than the manifest)."""
        if self.schedule.steps_fixed:
            return False
        manifest = self.store.read_manifest()
        if manifest.get("finished"):
            return self.config.steps > manifest["steps"]
        summary = self.store.read_summary()
        return bool(summary and summary.get("finished") is True and summary.get("steps_done", manifest["steps"]) < manifest["steps"])

    def _reopen(self, damaged: list[tuple[int | None, str, str]]) -> list[tuple[int | None, str, str]]:
        """Give a finished run more steps: it trains on from its final population and delivers
        again. In order: the earlier delivery (``summary.json``, ``final/member.pt``) is copied
        to ``deliveries/steps_NNNN/``; ``run_extended`` is journaled (readers drop what an earlier,
        cut attempt journaled after the last ``run_finished``); what the last step skipped only
        because it was the last is made up (the schedule's ``make_up``), so the run goes on as one started
        with the larger budget would have; the manifest is committed unfinished with the new
        budget (the commit point); then the earlier summary and final network go, since the run
        is unfinished until it delivers again. A cut before the commit redoes it all; after it,
        only the last part (:meth:`_reopening` sees the summary left behind).

        ``damaged`` (``--skip-damaged``): members whose checkpoints are damaged restart from fresh
        weights before the make-up, which may read them; returns those still to restart."""
        manifest = self.store.read_manifest_record()
        if manifest.finished:
            self._load_state(manifest)
            delivered = self.step_done + 1
            folder = self._keep_delivery(delivered)
            self.store.append(RunExtended(steps_done=delivered, steps=self.config.steps, delivery=folder))
            _restart_damaged(self, damaged)
            damaged = []
            self.schedule.make_up(self.step_done)
            self._write_manifest()
            # the time up to this commit is in the manifest's elapsed_s, which _load_manifest reads
            self._started = time.time()
            self.progress.note(f"the run had finished after {delivered} steps; it trains on to {self.config.steps} and delivers again")
        (self.store.root / "summary.json").unlink(missing_ok=True)
        (self.store.root / "final" / "member.pt").unlink(missing_ok=True)
        return damaged

    def _keep_delivery(self, steps_done: int) -> str | None:
        """Copy what the run delivered after ``steps_done`` steps (its summary and final network)
        to ``deliveries/steps_NNNN/`` so that a later delivery does not overwrite it; the folder,
        relative to the run directory (None when the summary is gone and nothing was kept)."""
        folder = f"deliveries/steps_{steps_done:04d}"
        target = self.store.root / folder
        summary = self.store.read_summary()
        final = self.store.root / "final" / "member.pt"
        if summary is None and not final.is_file():
            return None
        target.mkdir(parents=True, exist_ok=True)
        if final.is_file():
            atomic_write_bytes(target / "member.pt", final.read_bytes())
        if summary is not None:
            atomic_write_json(target / "summary.json", {**summary, "final_checkpoint": f"{folder}/member.pt"})
        return folder

    def _earlier_deliveries(self, steps_done: int) -> list[dict]:
        """What the run delivered before more steps reopened it (kept in ``deliveries/``), oldest
        first: steps done, the delivered member, its fitness and final metric, where it is kept."""
        base = self.store.root / "deliveries"
        if not base.is_dir():
            return []
        found = []
        for folder in base.iterdir():
            name = folder.name
            if not name.startswith("steps_") or not name[len("steps_") :].isdigit() or int(name[len("steps_") :]) >= steps_done:
                continue
            rel = f"deliveries/{name}"
            summary = self.store.read_json(f"{rel}/summary.json", "restore it from a copy, or remove its folder") or {}
            keys = ("final_selection", "best_uid", "best_fitness", "final_metric_name", "final_metric", "wall_time_s")
            entry = {"steps_done": int(name[len("steps_") :]), **{k: summary.get(k) for k in keys}}
            entry["final_checkpoint"] = f"{rel}/member.pt" if (folder / "member.pt").is_file() else None
            entry["summary"] = f"{rel}/summary.json" if summary else None
            found.append(entry)
        return sorted(found, key=lambda e: e["steps_done"])

    # -- the end ------------------------------------------------------------------------------
    def final_member(self) -> tuple[str, dict, Path]:
        """(selection, info, checkpoint path) of the network the run delivers (the schedule says which)."""
        return self.schedule.final_member(self.selection)

    @property
    def steps_fixed(self) -> str | None:
        """Why this run's ``steps`` may never change on resume (None: they may)."""
        return self.schedule.steps_fixed

    def _reevaluate_top(self) -> tuple[str, dict, Path]:
        """Re-score the kept top-k on the task's selection split; deliver the best of them."""
        seed = seeding.int_seed(self.config.seed, seeding.FINAL)
        scored = []
        for contender in self.top:
            genome, state, _ = load_member(self.store.absolute(contender.checkpoint))
            scored.append((contender, float(self.task.selection_score(genome, state, seed))))
        winner, score = choose(scored)
        self.store.append(FinalReevaluated(contenders=[{**c.to_dict(), "selection_score": v} for c, v in scored], chosen_uid=winner.uid))
        info = {
            "uid": winner.uid,
            "fitness": winner.fitness,
            "step": winner.step,
            "genome": winner.genome,
            "selection_score": score,
            "reevaluated": [{"uid": c.uid, "fitness": c.fitness, "selection_score": v} for c, v in scored],
        }
        return "top-k-reevaluated", info, self.store.absolute(winner.checkpoint)

    def _deliver_front(self) -> tuple[str, dict, Path, dict, dict]:
        """A run with several objectives: every front member re-scored on the final metric (the
        fitness replaced by it, the costs as measured), and the delivered network: the best
        feasible front member by the first objective (ties: the earlier snapshot). Returns
        (selection, info, checkpoint, its final metrics, the summary's multi-objective fields)."""
        assert self.front is not None
        self.front.delete_strays()
        if not self.front.hypervolume and self.step_done >= 0:  # a schedule without steps (bohb): the end's alone
            self.front.step_done(self.step_done)
        seed = seeding.int_seed(self.config.seed, seeding.FINAL)
        entries = sorted(self.front.entries, key=lambda e: (e.step, e.uid))
        rescored = []
        for entry in entries:
            genome, state, _ = load_member(self.store.absolute(entry.checkpoint))
            metrics = self.task.final_score(genome, state, seed)
            rescored.append((entry, metrics))
        first = self.objectives[0]
        pool = [em for em in rescored if em[0].feasible] or rescored
        sign = 1.0 if first.direction == "max" else -1.0
        chosen, metrics = max(pool, key=lambda em: sign * em[0].objectives[first.name]) if pool else (None, {})
        fields = {
            "objectives": [o.to_dict() for o in self.objectives],
            "constraints": [str(c) for c in self.constraints],
            "pareto_front": [
                {
                    **{k: getattr(e, k) for k in ("uid", "slot", "step", "genome", "objectives")},
                    "final_objectives": {**e.objectives, "fitness": self._final_as_fitness(m)},
                    "final_metrics": m,
                    "feasible": e.feasible,
                    "checkpoint": e.checkpoint,
                }
                for e, m in rescored
            ],
            "hypervolume": list(self.front.hypervolume),
            "hypervolume_reference": self.front.reference,
        }
        if chosen is None:
            selection, info, path = self.final_member()
            return selection, info, path, {}, fields
        info = {"uid": chosen.uid, "fitness": chosen.objectives["fitness"], "step": chosen.step, "genome": chosen.genome, "slot": chosen.slot}
        return "front-first-objective", info, self.store.absolute(chosen.checkpoint), metrics, fields

    def _final_as_fitness(self, metrics: dict) -> float | None:
        """The final metric in the fitness's orientation (higher is better), so that a front's
        ``final_objectives`` keep the objectives' directions: a task whose final metric is lower
        is better (the GAN's Fréchet distance, whose fitness is its negation) gives its negation.
        The raw value stays in the entry's ``final_metrics``."""
        value = metrics.get(self.task.final_metric_name)
        if value is None or self.task.final_metric_higher_is_better is not False:
            return value
        return -float(value)

    def _finish(self) -> dict:
        metrics: dict = {}
        front_fields: dict = {}
        if self.front is not None:
            selection, info, path, metrics, front_fields = self._deliver_front()
        elif self.selection == "top-k-reevaluated" and self.top:
            selection, info, path = self._reevaluate_top()
        else:
            selection, info, path = self.final_member()
        genome, state, _ = load_member(path)
        self.progress.note(f"final evaluation of member {info['uid']} ({selection}) ...")
        final_dir = self.store.root / "final"
        final_dir.mkdir(exist_ok=True)
        shutil.copyfile(path, final_dir / "member.pt")
        if not metrics:
            metrics = self.task.final_score(genome, state, seeding.int_seed(self.config.seed, seeding.FINAL))
        elapsed = self.elapsed_before + time.time() - self._started
        earlier = self._earlier_deliveries(self.step_done + 1)
        summary = Summary(
            algorithm=self.config.algorithm,
            task=self.config.task.get("name"),
            seed=self.config.seed,
            population=self.config.population,
            steps=self.config.steps,
            steps_done=self.step_done + 1,
            final_selection=selection,
            best_fitness=info["fitness"],
            best_uid=info["uid"],
            best_genome=info["genome"],
            fitness_name=self.task.fitness_name,
            final_metric_name=self.task.final_metric_name,
            final_metric=metrics.get(self.task.final_metric_name),
            final_metrics=metrics,
            final_checkpoint="final/member.pt",
            reevaluated=info.get("reevaluated"),
            wall_time_s=round(elapsed, 2),
            diverged_steps=diverged_fraction(self.store.events()),  # said past half: see pbtnas.engine.divergence
            finished=True,
            earlier_deliveries=earlier or None,  # a finished run that was given more steps: what it delivered before
        )
        summary = replace(self.schedule.summary_part(summary), **front_fields)
        self.store.write_summary(summary)
        self._write_manifest(finished=True)
        self.store.append(
            RunFinished(
                final_metric=summary.final_metric, best_fitness=summary.best_fitness, best_uid=summary.best_uid, steps_done=summary.steps_done
            )
        )
        result = summary.to_dict()
        self._notify("on_finish", result)
        self.progress.finish(result)
        return result

    def _notify(self, hook: str, *args) -> None:
        """Call ``hook`` on every observer that has it; only :class:`~pbtnas.engine.observers.RunObserver`'s hooks exist."""
        if hook not in HOOKS:
            raise ValueError(f"{hook!r} is not a RunObserver hook ({', '.join(sorted(HOOKS))})")
        for observer in self.observers:
            method = getattr(observer, hook, None)
            if method is not None:
                method(*args)


def _verify_checkpoints(store: RunStore, skip_damaged: bool, task: Task | None = None, reopening: bool = False) -> list[tuple[int | None, str, str]]:
    """Damaged checkpoints of the manifest (and ``best/member.pt``, slot None): one error naming
    the first, or, with ``skip_damaged``, the list of them (see :func:`_restart_damaged`). The
    manifest's genomes must fit the task's space: a manifest of another run is refused.
    ``reopening``: a finished run given more steps, whose members train again."""
    from pbtnas.errors import CheckpointError
    from pbtnas.rundir.checks import BEST_FILE, check_genomes

    manifest = store.read_manifest()
    if manifest.get("finished") and store.finished() and not reopening:  # nothing is read: run() returns the summary
        return []
    if task is not None:
        check_genomes(manifest, task.space, store.manifest_path)
    damaged: list[tuple[int | None, str, str]] = list(store.damaged_checkpoints(manifest))
    best = damaged_best(store, manifest)
    if best:
        damaged.append((None, BEST_FILE, best))
    if task is not None:
        _checkpoints_fit_task(store, manifest, task, skip={rel for _, rel, _ in damaged})
    if damaged and not skip_damaged:
        slot, rel, what = damaged[0]
        whose = f"of member {manifest['members'][slot].get('uid')}" if slot is not None else f"(the best network, member {manifest['best']['uid']})"
        more = f" (and {len(damaged) - 1} more)" if len(damaged) > 1 else ""
        instead = "that member restarts from fresh weights" if slot is not None else "the best network is taken from the surviving members"
        raise CheckpointError(
            f"checkpoint {store.absolute(rel)} {whose} is damaged: {what}{more}; "
            f"restore it, or continue without it: pbtnas resume {store.root} --skip-damaged "
            f"({instead})"
        )
    return damaged


def _check_journal(store: RunStore, reopening: bool = False) -> list[int]:
    """The journal a resume appends to: one error when an unfinished (or ``reopening``) run has
    none (or an empty one: its history is lost); otherwise the numbers of its damaged lines, said
    in one warning line here and journaled by the caller, so that no line is dropped silently."""
    import sys

    from pbtnas.errors import RunFileError

    if store.finished() and not reopening:
        return []
    store.events(valid_only=False)  # refuses a linked journal; counts the damaged lines
    path = store.journal_path
    if not path.is_file() or path.stat().st_size == 0:
        raise RunFileError(
            f"{path} is {'empty' if path.is_file() else 'missing'}: the run's history is lost and resuming would start "
            "a journal that contradicts population.json; restore it from a copy, or start a new run"
        )
    damage = store.journal_damage()
    if damage:
        print(f"warning: {damage}; the resume goes on (journaled as journal_damaged)", file=sys.stderr)
    return list(store.skipped_lines)


def _checkpoints_fit_task(store: RunStore, manifest: dict, task: Task, skip: set[str], genomes: int = 4) -> None:
    """A run resumed after its task was edited (a layer added or resized) would fail every member
    at its first step; say so once, before anything runs. Reads the checkpoints of up to
    ``genomes`` distinct architectures of the population and compares their tensors' names and
    shapes with a fresh network of the same genome."""
    from pbtnas.errors import CheckpointError

    seen: set[str] = set()
    for member in manifest["members"]:
        rel = member.get("checkpoint")
        key = json.dumps(member.get("genome"), sort_keys=True, default=str)
        if not rel or rel in skip or key in seen:
            continue
        seen.add(key)
        genome, state, _ = load_member(store.absolute(rel))
        problem = state_mismatch(task.init_state(task.space.validate(genome), 0), state)
        if problem:
            raise CheckpointError(
                f"checkpoint {store.absolute(rel)} of member {member.get('uid')} does not fit the task's network any more "
                f"({problem}): the task changed since the run started; restore it to resume, or start a new run"
            )
        if len(seen) >= genomes:
            return


def _restart_damaged(runner: "Runner", damaged: list[tuple[int | None, str, str]]) -> None:
    """A member whose checkpoint is damaged restarts from fresh weights of its genome (its own
    init seed), as at step 0; its next step's fitness replaces the lost one. A damaged best
    network (slot None) is replaced by the best surviving member (:func:`_replace_best`)."""
    for slot, rel, what in damaged:
        if slot is None:
            continue
        member = runner.members[slot]
        member.checkpoint = None
        member.fitness = float("-inf")
        runner.store.append(CheckpointSkipped(slot=slot, uid=member.uid, file=rel, reason=what, restarts="fresh weights"))
        runner.progress.note(f"member {member.uid}: damaged checkpoint {rel} skipped ({what}); it restarts from fresh weights")
    for slot, rel, what in damaged:
        if slot is None:
            _replace_best(runner, rel, what)


def _replace_best(runner: "Runner", rel: str, what: str) -> None:
    """The best network's checkpoint is damaged: the best-ever network is lost, and the best of
    the members whose checkpoints survived (highest fitness) takes its place; with none, there is
    no best network until a member trains again."""
    lost = runner.best
    alive = [m for m in runner.members if m.checkpoint and m.fitness is not None and m.fitness > float("-inf")]
    leader = max(alive, key=lambda m: (m.fitness, -m.slot)) if alive else None
    if leader is None:
        runner.best = None
        for name in ("member.pt", "best.json"):
            (runner.store.best_dir / name).unlink(missing_ok=True)
        instead = "no best network until a member trains again"
    else:
        step = runner.schedule.last_step(leader)
        runner.best = BestRecord(uid=leader.uid, fitness=fitness_of(leader), step=step, genome=leader.genome, slot=leader.slot)
        runner.store.save_best(runner.store.absolute(leader.checkpoint), runner.best)
        instead = f"the best surviving member {leader.uid} (fitness {leader.fitness:.6g})"
    slot = lost.slot if lost is not None and isinstance(lost.slot, int) else -1
    uid = lost.uid if lost is not None and isinstance(lost.uid, int) else -1
    runner.store.append(CheckpointSkipped(slot=slot, uid=uid, file=rel, reason=what, restarts=instead))
    runner.progress.note(f"best network: damaged checkpoint {rel} skipped ({what}); replaced by {instead}")


def failed_error(runner: "Runner", failed: list[TrainResult], what: str) -> RunError:
    """The error that stops a run whose members all failed: one line with the first error's type
    and message (a full disk: the file that could not be written). The full tracebacks, which
    only the workers saw, go to the journal as ``member_failed``."""
    try:
        for result in failed:
            runner.journal_failed(runner.members[result.slot], result)
    except OSError:  # a full disk: the error line below is what counts
        pass
    first = error_headline(failed[0].error or "") or "unknown error"
    resume = f"pbtnas resume {runner.store.root}"
    if first.startswith("WriteError: "):
        return RunError(f"{first[len('WriteError: ') :]}; free space (or fix permissions) and continue with: {resume}")
    return RunError(f"{what}: {first} (traceback in the journal, event member_failed); fix the cause and continue with: {resume}")


def make_runner(
    config: RunConfig, run_dir: str | Path, backend: Backend | None = None, progress: bool = True, remember_check: bool = False
) -> Runner:
    """The runner a config asks for (its schedule from :mod:`pbtnas.search.schedules`) with the
    loggers it names; used by the CLI, :func:`pbtnas.run` and ``compare`` alike.
    ``remember_check``: see :attr:`Runner.remember_check`."""
    from pbtnas.engine.memory import check_memory

    check_memory(config)  # options that would exhaust memory: refused before anything is built
    runner = Runner(config, run_dir, backend, progress=progress)
    runner.remember_check = remember_check
    runner.observers.extend(_loggers(config, run_dir))
    return runner


def resume_runner(
    run_dir: str | Path,
    overrides: dict | None = None,
    backend: Backend | None = None,
    progress: bool = True,
    skip_damaged: bool = False,
    remember_check: bool = False,
    trust_code: bool = False,
) -> Runner:
    """A runner that continues ``run_dir`` in the mode it was started with: the one resume of
    ``pbtnas resume`` and :func:`pbtnas.resume`. A task file is imported only if it is the one
    the run recorded at start and lies outside the run folder, unless ``trust_code``
    (:mod:`pbtnas.tasks.trust`).

    ``overrides`` are the changes asked for (``steps=30``, ``workers=4``, ``task={"device":
    "cuda"}`` or ``**{"task.device": "cuda"}``); :func:`~pbtnas.engine.resume_policy.plan_resume`
    decides what may change (a refusal is one :class:`ConfigError` and nothing is written). The
    accepted changes go to ``config.yaml`` and the journal (``config_changed``) and are listed in
    the runner's ``changes``; more steps for a finished run reopen it (``run_extended``).
    ``had_finished`` then says whether the run had delivered and is not trained again."""
    store = RunStore(run_dir)
    stored = store.read_config()
    check_run_task(run_dir, stored.get("task"), trust_code)  # before any task code is imported
    # no manifest: the start was cut before its first commit, and resume starts it again
    manifest = store.read_manifest() if store.manifest_path.exists() else {}
    done = max(manifest.get("slot_steps") or [manifest.get("step_done", -1) + 1])
    plan = plan_resume(stored, overrides or {}, done, bool(manifest.get("finished")), schedule_class(stored).steps_fixed)
    runner = Runner.resume(run_dir, backend, progress=progress, skip_damaged=skip_damaged, remember_check=remember_check, plan=plan)
    runner.observers.extend(_loggers(runner.config, run_dir))
    return runner


def _loggers(config: RunConfig, run_dir: str | Path) -> list:
    """Loggers named in ``config.loggers`` (imported only when chosen); with none named,
    TensorBoard when it is installed; ``loggers: none`` for none at all."""
    from pbtnas.engine.loggers import make_loggers, resolve_names

    return make_loggers(resolve_names(config.loggers), str(run_dir))
