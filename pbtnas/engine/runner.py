"""The one loop that wires task, algorithm, scheduler, backend and store (synchronous PBT-NAS).

Per step: every member trains one step on the backend (barrier), fitnesses are journaled and the
best-ever network is kept; unless it was the last step, the bottom of the population is replaced
by children (or, for random-sp, every member is shrink-perturbed); the manifest is then written
atomically, which is the commit point a resume continues from.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pbtnas.backends import Backend, TrainJob, TrainResult, make_backend
from pbtnas.config import RunConfig, config_from_dict
from pbtnas.engine import faults, seeding
from pbtnas.engine.progress import Progress
from pbtnas.errors import ConfigError, PbtnasError
from pbtnas.rundir.atomic import atomic_write_bytes
from pbtnas.rundir.store import RunStore, load_member, save_member
from pbtnas.search.algorithms import Algorithm, algorithm_from_config
from pbtnas.search.final_selection import Contender, admit, choose
from pbtnas.search.selection import clean_fitness, plan_generation, rank, should_exploit
from pbtnas.tasks import BUILTIN, build_task, import_roots, importable_elsewhere, portable_task_config
from pbtnas.tasks.base import Task


class RunError(PbtnasError):
    """The run cannot go on (e.g. every member failed the same step)."""


@dataclass
class SlotRecord:
    """One slot of the population as the manifest records it: the member in it and where it stands."""

    slot: int
    uid: int
    genome: dict
    checkpoint: str | None  # relative to the run directory; None before the first step
    init_seed: int
    born_step: int = -1
    parents: list | None = None
    fitness: float | None = None
    failures: int = 0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class Runner:
    """Runs (or resumes) one search in one run directory."""

    def __init__(self, config: RunConfig, run_dir: str | Path, backend: Backend | None = None, observers: list | None = None, progress: bool = True):
        self.config = config
        self.store = RunStore(run_dir)
        # A task file is recorded by its absolute path, so resume, report and export find it from
        # any working directory (and workers started elsewhere receive the same name).
        config.task = portable_task_config(config.task)
        self.task: Task = build_task(config.task)
        self._task_config = config.task
        self._task_roots = import_roots(config.task)
        self.algorithm: Algorithm = algorithm_from_config(config)
        self._backend = backend
        self.observers = list(observers or [])
        self.progress = Progress(config.steps, config.population, enabled=progress)
        self.members: list[SlotRecord] = []
        self.step_done = -1
        self.next_uid = 0
        self.best: dict | None = None
        self.top: list[Contender] = []  # with final_selection top-k-reevaluated: the best members so far
        # slot -> (uid, result or None while running) of next-step jobs started early (lookahead)
        self._ahead: dict[int, tuple[int, TrainResult | None]] = {}
        self._early: set[int] = set()  # slots whose result of this step came from such a job
        self._consecutive_failures = 0  # schedules without a barrier: failures in a row
        self.elapsed_before = 0.0
        self._started = time.time()

    # -- entry points -------------------------------------------------------------------------
    @classmethod
    def resume(
        cls, run_dir: str | Path, backend: Backend | None = None, overrides: dict | None = None, progress: bool = True, skip_damaged: bool = False
    ) -> "Runner":
        """Continue ``run_dir`` (holding its lock until :meth:`run` ends). The checkpoints the
        manifest needs are verified first; a damaged one stops here with one error naming it,
        unless ``skip_damaged``: then that member restarts from fresh weights (journaled)."""
        store = RunStore(run_dir)
        data = store.read_config()
        data.update(overrides or {})
        runner = cls(config_from_dict(data, where=f"{store.config_path}"), run_dir, backend, progress=progress)
        stale = runner.store.lock()
        try:
            if not runner.store.manifest_path.exists():
                return runner.start()  # the start was cut before its first commit: start it again
            if stale:
                runner.store.append("lock_taken_over", previous=stale)
            skipped = _verify_checkpoints(runner.store, skip_damaged)
            runner._load_manifest()
            _restart_damaged(runner, skipped)
        except BaseException:
            runner.store.unlock()
            raise
        return runner

    def start(self) -> "Runner":
        """Create the run directory and the initial (stratified) population."""
        self.task.prepare()
        self._check_task()
        if self.selection == "top-k-reevaluated":
            self.task.check_selection_split()
        self.store.create(self.config.to_dict())  # takes the run directory's lock
        self.store.append(
            "run_started", config=self.config.to_dict(), task=self.task.describe(), space=self.task.space.name, genes=len(self.task.space)
        )
        rng = seeding.rng_for(self.config.seed, seeding.INIT)
        genomes = self.task.space.stratified_population(self.config.population, rng)
        for slot, genome in enumerate(genomes):
            member = SlotRecord(
                slot=slot, uid=slot, genome=genome, checkpoint=None, init_seed=seeding.int_seed(self.config.seed, seeding.MEMBER_INIT, slot)
            )
            self.members.append(member)
            self.store.append("member_created", step=0, slot=slot, uid=slot, genome=genome, seed=member.init_seed)
        self.next_uid = len(genomes)
        self._write_manifest()
        return self

    def _check_task(self) -> None:
        """The task contract, once in the driver before the run directory exists (a broken task
        is one error line and leaves nothing behind)."""
        from pbtnas.tasks.check import check_task

        if self.config.backend != "inprocess" and not importable_elsewhere(self.config.task["name"]):
            raise ConfigError(
                f"task {self.config.task['name']!r} is defined in an interactive session, which "
                "worker processes cannot import: put it in a .py file, or use backend: inprocess"
            )
        builtin = self.config.task["name"] in BUILTIN
        report = check_task(self.task, seed=self.config.seed, train=False, evaluate=not builtin)
        self.check_seconds = report.seconds

    def run(self) -> dict:
        """Train until the budget is spent (from wherever the manifest stands); return the summary.
        The same for every schedule: a finished run returns its summary, the backend is made and
        closed, the run directory's lock released however the run ends; :meth:`_loop` differs."""
        if not self._ready_to_run():
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
        try:
            return self._loop(backend)
        finally:
            if self._backend is None:
                backend.close()
            self.store.unlock()

    def _ready_to_run(self) -> bool:
        return bool(self.members)

    def _loop(self, backend: Backend) -> dict:
        """The synchronous schedule: every member one step (barrier), exploit, commit, repeat."""
        self.progress.begin(self.step_done + 1)
        for step in range(self.step_done + 1, self.config.steps):
            results = self._train_population(backend, step)
            self._record(step, results)
            if step < self.config.steps - 1:
                if self.algorithm.exploits and should_exploit(step, self.config.steps, self.config.exploit_every_first_half):
                    self._exploit(step)
                elif self.algorithm.refresh_every_step:
                    self._refresh(step)
            self.step_done = step
            self._write_manifest()
            self.store.append(
                "step_done", step=step, best_fitness=self.best and self.best["fitness"], population_fitness=[m.fitness for m in self.members]
            )
            self._prune(step)
            self._notify("on_step_end", step, self)
            faults.at("after-step", step)
        return self._finish()

    def _check_failures(self, result: TrainResult) -> None:
        """Schedules without a barrier stop after ``population`` member failures in a row (the
        synchronous one stops when every member of a step failed)."""
        if result.error and not result.diverged:
            self._consecutive_failures += 1
            if self._consecutive_failures >= self.config.population:
                first = result.error.strip().splitlines()
                raise RunError(
                    f"{self._consecutive_failures} member steps in a row failed; last error: {first[0]}\n"
                    + "\n".join(first[1:])
                    + f"\nfix the cause and continue with: pbtnas resume {self.store.root}"
                )
        else:
            self._consecutive_failures = 0

    # -- one step -----------------------------------------------------------------------------
    def _job(self, member: SlotRecord, step: int, attempt: int = 1) -> TrainJob:
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
        )

    def _train_population(self, backend: Backend, step: int) -> dict[int, TrainResult]:
        # Jobs started ahead during the last step (lookahead) count only for members still in their
        # slot; a replaced member's early result is dropped, its job's output never read.
        ahead = {slot: r for slot, (uid, r) in self._ahead.items() if uid == self.members[slot].uid}
        self._ahead = {}
        self._early = set(ahead)
        for member in self.members:
            if member.slot not in ahead:
                backend.submit(self._job(member, step))
        results: dict[int, TrainResult] = {}
        arrived = [r for r in ahead.values() if r is not None]
        while len(results) < len(self.members):
            result = arrived.pop(0) if arrived else backend.next_result()
            if result.step != step:
                if result.step == step + 1 and self._ahead.get(result.slot, (None, None))[0] == result.uid:
                    self._ahead[result.slot] = (result.uid, result)  # a lookahead job finished early
                continue  # otherwise the early job of a member replaced since
            member = self.members[result.slot]
            if result.uid != member.uid or result.slot in results:
                continue  # the early job of a member that was replaced meanwhile
            if result.lost_worker:
                if result.attempt <= self.config.max_retries:
                    self.store.append("member_retry", step=step, slot=result.slot, uid=result.uid, attempt=result.attempt + 1, reason=result.error)
                    self.progress.note(f"member {result.uid} lost its worker; retry {result.attempt + 1}")
                    backend.submit(self._job(member, step, attempt=result.attempt + 1))
                    continue
                self._keep_previous_state(member, result)
            results[result.slot] = result
            self.progress.member_done(step, len(results), self._best_so_far(results), result)
            self._notify("on_member_result", step, member, result)
            self._look_ahead(backend, step, results)
        failed = [r for r in results.values() if r.error and not r.diverged]
        if len(failed) == len(self.members):
            first = failed[0].error.strip().splitlines()
            raise RunError(
                f"every member failed step {step}; first error: {first[0]}\n"
                + "\n".join(first[1:])
                + f"\nfix the cause and continue with: pbtnas resume {self.store.root}"
            )
        if all(r.diverged for r in results.values()):
            # nothing trained: delivering a network would mean delivering one that never learnt
            raise RunError(
                f"every member diverged at step {step} (first: {next(iter(results.values())).error}); "
                "lower the learning rate or check the data, then start again"
            )
        return results

    def _look_ahead(self, backend: Backend, step: int, results: dict[int, TrainResult]) -> None:
        """Fill idle workers while the slowest members finish: start the next step of members that
        are sure to survive this step's exploitation (at least as many finished members rank
        strictly below them as will be replaced). Survivors are not changed by exploitation, so the
        early job is exactly the job the next step would submit: same input, same seeds, same
        result. Nothing is started ahead for algorithms that change every member between steps."""
        if not self.config.lookahead or step + 1 >= self.config.steps or self.algorithm.refresh_every_step:
            return
        idle = backend.slots - backend.pending()
        if idle <= 0:
            return
        exploiting = self.algorithm.exploits and should_exploit(step, self.config.steps, self.config.exploit_every_first_half)
        replaced = max(1, int(self.config.population * self.config.tau)) if exploiting else 0
        finished = {slot: clean_fitness(r.fitness) for slot, r in results.items()}
        for slot in sorted(finished, key=lambda s: -finished[s]):
            if idle <= 0:
                break
            result = results[slot]
            if slot in self._ahead or result.error or not Path(result.state_out).exists():
                continue
            below = sum(1 for other, f in finished.items() if other != slot and f < finished[slot])
            if below < replaced:
                continue
            member = self.members[slot]
            early = SlotRecord(**{**member.to_dict(), "checkpoint": self.store.relative(Path(result.state_out))})
            backend.submit(self._job(early, step + 1))
            self._ahead[slot] = (member.uid, None)
            idle -= 1

    def _keep_previous_state(self, member: SlotRecord, result: TrainResult) -> None:
        """A member whose retries ran out keeps its last good checkpoint and fitness -inf."""
        self.store.append("member_failed", step=result.step, slot=result.slot, uid=result.uid, attempts=result.attempt, reason=result.error)
        if member.checkpoint and not Path(result.state_out).exists():
            shutil.copyfile(self.store.absolute(member.checkpoint), result.state_out)

    def _best_so_far(self, results: dict[int, TrainResult]) -> float | None:
        values = [r.fitness for r in results.values()]
        if self.best:
            values.append(self.best["fitness"])
        values = [clean_fitness(v) for v in values]
        return max(values) if values else None

    def _record(self, step: int, results: dict[int, TrainResult]) -> None:
        for slot in sorted(results):
            result, member = results[slot], self.members[slot]
            member.fitness = clean_fitness(result.fitness)
            if Path(result.state_out).exists():
                member.checkpoint = self.store.relative(Path(result.state_out))
            if result.error:
                member.failures += 1
            self.store.append(
                "member_trained",
                step=step,
                slot=slot,
                uid=member.uid,
                fitness=member.fitness,
                metrics=result.metrics,
                seconds=round(result.seconds, 3),
                worker=result.worker,
                attempt=result.attempt,
                peak_rss_mb=round(result.peak_rss_mb, 1),
                **({"started_early": True} if slot in self._early else {}),
                **({"error": result.error.strip().splitlines()[0], "diverged": result.diverged} if result.error else {}),
            )
            if result.error:
                self.progress.note(f"member {member.uid} failed at step {step}: {result.error.strip().splitlines()[0]}")
            if member.fitness > float("-inf") and (self.best is None or member.fitness > self.best["fitness"]):
                self.best = {"uid": member.uid, "fitness": member.fitness, "step": step, "genome": member.genome, "slot": slot}
                self.store.save_best(Path(result.state_out), self.best)
                self.store.append("best_updated", step=step, uid=member.uid, fitness=member.fitness)
            if self.selection == "top-k-reevaluated" and not result.error:
                self._keep_if_top(member, step, Path(result.state_out))
        self._draw_samples(step)

    @property
    def selection(self) -> str:
        """How the delivered network is chosen (the config's, or the task's default)."""
        return self.config.final_selection or self.task.default_final_selection

    def _keep_if_top(self, member: SlotRecord, step: int, checkpoint: Path) -> None:
        """Keep a copy of the member's checkpoint while it is among the reevaluate_top_k best."""
        path = f"best/top/uid{member.uid:05d}.pt"
        candidate = Contender(uid=member.uid, fitness=member.fitness, step=step, genome=member.genome, checkpoint=path)
        kept, dropped = admit(self.top, candidate, self.config.reevaluate_top_k)
        if candidate in kept:
            target = self.store.absolute(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(target, checkpoint.read_bytes())
        for old in dropped:
            if all(c.uid != old.uid for c in kept):
                self.store.absolute(old.checkpoint).unlink(missing_ok=True)
        self.top = kept

    def _draw_samples(self, step: int) -> None:
        draw = getattr(self.task, "sample_grid", None)
        if draw is None:
            return
        alive = [m for m in self.members if m.fitness is not None and m.fitness > float("-inf")]
        if not alive:
            return
        leader = max(alive, key=lambda m: (m.fitness, -m.slot))
        genome, state, _ = load_member(self.store.absolute(leader.checkpoint))
        path = self.store.root / "samples" / f"step_{step:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        draw(genome, state, str(path), seeding.int_seed(self.config.seed, seeding.SAMPLES))

    # -- exploitation -------------------------------------------------------------------------
    def _exploit(self, step: int) -> None:
        rng = seeding.rng_for(self.config.seed, seeding.EXPLOIT, step)
        fitness = {m.slot: m.fitness for m in self.members}
        plans = plan_generation(fitness, self.config.tau, rng)
        cache: dict[int, tuple] = {}

        def parent(slot: int):
            if slot not in cache:
                genome, state, _ = load_member(self.store.absolute(self.members[slot].checkpoint))
                cache[slot] = (genome, state)
            return cache[slot]

        new_members = {}
        for plan in plans:
            p1, p2 = self.members[plan.primary], self.members[plan.donor]
            child_rng = seeding.rng_for(self.config.seed, seeding.EXPLOIT, step, 1 + plan.slot)
            genome, state, record = self.algorithm.make_child(self.task, parent(plan.primary), parent(plan.donor), child_rng)
            uid = self.next_uid
            self.next_uid += 1
            path = self.store.member_path(step, uid)
            save_member(path, genome, state, uid, {"step": step, "born": True})
            replaced = self.members[plan.slot]
            record.primary, record.donor = p1.uid, (None if record.details.get("self_donor") else p2.uid)
            parents = [p1.uid] if record.donor is None else [p1.uid, p2.uid]
            self.store.append(
                "child_created", step=step, slot=plan.slot, uid=uid, parents=parents, replaced_uid=replaced.uid, genome=genome, **record.to_dict()
            )
            self.store.append("member_replaced", step=step, slot=plan.slot, old_uid=replaced.uid, new_uid=uid, old_fitness=replaced.fitness)
            new_members[plan.slot] = SlotRecord(
                slot=plan.slot,
                uid=uid,
                genome=genome,
                checkpoint=self.store.relative(path),
                init_seed=record.seed or 0,
                born_step=step,
                parents=parents,
            )
            self._notify("on_child", step, new_members[plan.slot], record)
        for slot, member in new_members.items():
            self.members[slot] = member

    def _refresh(self, step: int) -> None:
        for member in self.members:
            genome, state, _ = load_member(self.store.absolute(member.checkpoint))
            rng = seeding.rng_for(self.config.seed, seeding.EXPLOIT, step, 1 + member.slot)
            state, record = self.algorithm.refresh(self.task, genome, state, rng)
            path = self.store.member_path(step, member.uid, "-sp")
            save_member(path, genome, state, member.uid, {"step": step, "refreshed": True})
            member.checkpoint = self.store.relative(path)
            self.store.append("member_refreshed", step=step, slot=member.slot, uid=member.uid, **record.to_dict())

    # -- persistence --------------------------------------------------------------------------
    def _write_manifest(self, finished: bool = False) -> None:
        self.store.write_manifest(
            {
                "step_done": self.step_done,
                "steps": self.config.steps,
                "next_uid": self.next_uid,
                "members": [m.to_dict() for m in self.members],
                "best": self.best,
                "top": [c.to_dict() for c in self.top],
                "elapsed_s": round(self.elapsed_before + time.time() - self._started, 3),
                "finished": finished,
            }
        )

    def _load_manifest(self) -> None:
        manifest = self.store.read_manifest()
        self.top = [Contender(**c) for c in manifest.get("top", [])]
        self.members = [SlotRecord(**m) for m in manifest["members"]]
        if len(self.members) != self.config.population:
            raise PbtnasError(f"{self.store.manifest_path} holds {len(self.members)} members but the config says population {self.config.population}")
        self.step_done = manifest["step_done"]
        self.next_uid = manifest["next_uid"]
        self.best = manifest.get("best")
        self.elapsed_before = manifest.get("elapsed_s", 0.0)
        if not manifest.get("finished"):
            self.store.append("run_resumed", from_step=self.step_done + 1)

    def _prune(self, step: int) -> None:
        referenced = {m.checkpoint for m in self.members if m.checkpoint}
        self.store.prune_checkpoints(step - self.config.keep_checkpoints + 1, referenced)

    # -- the end ------------------------------------------------------------------------------
    def final_member(self) -> tuple[str, dict, Path]:
        """(selection, info, checkpoint path) of the network the run delivers."""
        selection = self.config.final_selection or self.task.default_final_selection
        if selection == "best-ever" and self.best is not None:
            return selection, dict(self.best), self.store.best_dir / "member.pt"
        order = rank({m.slot: m.fitness for m in self.members}, seeding.rng_for(self.config.seed, seeding.FINAL))
        leader = self.members[order[0]]
        info = {"uid": leader.uid, "fitness": leader.fitness, "step": self.step_done, "genome": leader.genome, "slot": leader.slot}
        return "best-last", info, self.store.absolute(leader.checkpoint)

    def _reevaluate_top(self) -> tuple[str, dict, Path]:
        """Re-score the kept top-k on the task's selection split; deliver the best of them."""
        seed = seeding.int_seed(self.config.seed, seeding.FINAL)
        scored = []
        for contender in self.top:
            genome, state, _ = load_member(self.store.absolute(contender.checkpoint))
            scored.append((contender, float(self.task.selection_score(genome, state, seed))))
        winner, score = choose(scored)
        self.store.append("final_reevaluated", contenders=[{**c.to_dict(), "selection_score": v} for c, v in scored], chosen_uid=winner.uid)
        info = {
            "uid": winner.uid,
            "fitness": winner.fitness,
            "step": winner.step,
            "genome": winner.genome,
            "selection_score": score,
            "reevaluated": [{"uid": c.uid, "fitness": c.fitness, "selection_score": v} for c, v in scored],
        }
        return "top-k-reevaluated", info, self.store.absolute(winner.checkpoint)

    def _finish(self) -> dict:
        if self.selection == "top-k-reevaluated" and self.top:
            selection, info, path = self._reevaluate_top()
        else:
            selection, info, path = self.final_member()
        genome, state, _ = load_member(path)
        self.progress.note(f"final evaluation of member {info['uid']} ({selection}) ...")
        final_dir = self.store.root / "final"
        final_dir.mkdir(exist_ok=True)
        shutil.copyfile(path, final_dir / "member.pt")
        metrics = self.task.final_score(genome, state, seeding.int_seed(self.config.seed, seeding.FINAL))
        elapsed = self.elapsed_before + time.time() - self._started
        summary: dict[str, Any] = {
            "algorithm": self.config.algorithm,
            "task": self.config.task.get("name"),
            "seed": self.config.seed,
            "population": self.config.population,
            "steps": self.config.steps,
            "steps_done": self.step_done + 1,
            "final_selection": selection,
            "best_fitness": info["fitness"],
            "best_uid": info["uid"],
            "best_genome": info["genome"],
            "fitness_name": self.task.fitness_name,
            "final_metric_name": self.task.final_metric_name,
            "final_metric": metrics.get(self.task.final_metric_name),
            "final_metrics": metrics,
            "final_checkpoint": "final/member.pt",
            **({"reevaluated": info["reevaluated"]} if "reevaluated" in info else {}),
            "wall_time_s": round(elapsed, 2),
            "finished": True,
        }
        self.store.write_summary(summary)
        self._write_manifest(finished=True)
        self.store.append("run_finished", **{k: summary[k] for k in ("final_metric", "best_fitness", "best_uid")})
        self._notify("on_finish", summary)
        self.progress.finish(summary)
        return summary

    def _notify(self, hook: str, *args) -> None:
        for observer in self.observers:
            method = getattr(observer, hook, None)
            if method is not None:
                method(*args)


def _verify_checkpoints(store: RunStore, skip_damaged: bool) -> list[tuple[int, str, str]]:
    """Damaged checkpoints of the manifest: one error naming the first, or, with
    ``skip_damaged``, the list of them (their members restart, see :func:`_restart_damaged`)."""
    from pbtnas.errors import CheckpointError

    manifest = store.read_manifest()
    if manifest.get("finished"):
        return []
    damaged = store.damaged_checkpoints(manifest)
    if damaged and not skip_damaged:
        slot, rel, what = damaged[0]
        uid = manifest["members"][slot].get("uid")
        more = f" (and {len(damaged) - 1} more)" if len(damaged) > 1 else ""
        raise CheckpointError(
            f"checkpoint {store.absolute(rel)} of member {uid} is damaged: {what}{more}; "
            f"restore it, or continue without it: pbtnas resume {store.root} --skip-damaged "
            "(that member restarts from fresh weights)"
        )
    return damaged


def _restart_damaged(runner: "Runner", damaged: list[tuple[int, str, str]]) -> None:
    """A member whose checkpoint is damaged restarts from fresh weights of its genome (its own
    init seed), as at step 0; its next step's fitness replaces the lost one."""
    for slot, rel, what in damaged:
        member = runner.members[slot]
        member.checkpoint = None
        member.fitness = float("-inf")
        runner.store.append("checkpoint_skipped", slot=slot, uid=member.uid, file=rel, reason=what, restarts="fresh weights")
        runner.progress.note(f"member {member.uid}: damaged checkpoint {rel} skipped ({what}); it restarts from fresh weights")


def make_runner(config: RunConfig, run_dir: str | Path, backend: Backend | None = None, progress: bool = True) -> Runner:
    """The runner a config asks for (synchronous, or asynchronous with ``mode: async``) with the
    loggers it names; used by the CLI, :func:`pbtnas.run` and ``compare`` alike."""
    if config.algorithm == "bohb":
        from pbtnas.engine.bohb import BohbRunner

        runner: Runner = BohbRunner(config, run_dir, backend, progress=progress)
    elif config.mode == "async":
        from pbtnas.engine.async_runner import AsyncRunner

        runner = AsyncRunner(config, run_dir, backend, progress=progress)
    else:
        runner = Runner(config, run_dir, backend, progress=progress)
    runner.observers.extend(_loggers(config, run_dir))
    return runner


def resume_runner(
    run_dir: str | Path, overrides: dict | None = None, backend: Backend | None = None, progress: bool = True, skip_damaged: bool = False
) -> Runner:
    """A runner that continues ``run_dir`` in the mode it was started with."""
    stored = RunStore(run_dir).read_config()
    mode = stored.get("mode", "sync")
    if stored.get("algorithm") == "bohb":
        from pbtnas.engine.bohb import BohbRunner

        runner: Runner = BohbRunner.resume(run_dir, backend, overrides, progress=progress, skip_damaged=skip_damaged)
    elif mode == "async":
        from pbtnas.engine.async_runner import AsyncRunner

        runner = AsyncRunner.resume(run_dir, backend, overrides, progress=progress, skip_damaged=skip_damaged)
    else:
        runner = Runner.resume(run_dir, backend, overrides, progress=progress, skip_damaged=skip_damaged)
    runner.observers.extend(_loggers(runner.config, run_dir))
    return runner


def _loggers(config: RunConfig, run_dir: str | Path) -> list:
    """Loggers named in ``config.loggers`` (imported only when chosen); with none named,
    TensorBoard when it is installed; ``loggers: none`` for none at all."""
    from pbtnas.engine.loggers import make_loggers, resolve_names

    return make_loggers(resolve_names(config.loggers), str(run_dir))
