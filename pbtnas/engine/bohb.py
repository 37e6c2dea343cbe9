"""BOHB at PBT-NAS's budget (``algorithm: bohb``): TPE sampling with Hyperband pruning, on Optuna.

A *trial* is one member trained from scratch, one step per :class:`~pbtnas.backends.TrainJob`,
through the same task code and backends as every other run; its checkpoints live in the run
directory like any member's (``checkpoints/step_XXXX/uidNNNN.pt``, uid = the Optuna trial number).
After every step its fitness goes to Optuna (``trial.report(fitness, trained_steps)``) and
Optuna's :class:`~optuna.pruners.HyperbandPruner` (min resource 1 step, max resource ``steps``,
reduction factor ``bohb_eta``) says whether it stops. Genomes come from
:class:`~optuna.samplers.TPESampler` (every gene a ``suggest_categorical``); the first
``population`` trials are the run's stratified initial population, the same one every other
algorithm starts from with this seed, and serve as TPE's startup trials. As many trials train at
once as the backend has workers.

Budget, in member steps (docs/bohb.md): every step of every trial costs one, exactly as one member
step of PBT-NAS. A step is started only while ``trained + in flight < population x steps``;
running trials go on before new ones start, and trials still running when the budget is spent
end as *stopped* (told to Optuna as pruned). The run therefore trains exactly
``population x steps`` member steps. A budget too small for one Hyperband bracket is refused by
the config (:mod:`pbtnas.search.hyperband`).

Commit point and resume: Optuna's study is kept in ``RUN_DIR/optuna-study.log`` (``JournalStorage``
on a ``JournalFileBackend``, append-only) and written *before* the manifest, which is written
after every processed result. ``pbtnas resume`` reopens the study and continues: a trial's step
that was in flight when the driver died is **redone** from the trial's last committed checkpoint
with the same seeds; if Optuna had already ended the trial, its recorded end is kept; a trial
Optuna started that the manifest never recorded (a kill between the two writes) is marked failed
in the study and costs no budget. Journal events of a redone step appear twice; readers keep the
last.
"""

from __future__ import annotations

import binascii
import math
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

from pbtnas import faults
from pbtnas.backends import Backend, TrainResult
from pbtnas.config import RunConfig
from pbtnas.engine import seeding
from pbtnas.engine.runner import RunError
from pbtnas.engine.schedule import Schedule
from pbtnas.errors import ConfigError, error_headline, require
from pbtnas.rundir.records import (
    Manifest,
    MemberCreated,
    MemberEntry,
    MemberTrained,
    RunResumed,
    RunStarted,
    StepDone,
    Summary,
    TrialCompleted,
    TrialEntry,
    TrialFailed,
    TrialPromoted,
    TrialPruned,
    TrialStarted,
    TrialStopped,
    TrialVoided,
    fitness_of,
)
from pbtnas.rundir.store import RunStore
from pbtnas.search.algorithms import Operator
from pbtnas.search.hyperband import n_brackets, rungs
from pbtnas.search.schedules import schedule_of_config

STUDY_FILE = "optuna-study.log"
#: seeding purpose of the TPE sampler's streams (far from seeding's own purposes)
SAMPLER = 101
ENDS = ("completed", "pruned", "stopped", "failed")
#: how a trial ended -> the journal event that says so
ENDED = {"completed": TrialCompleted, "pruned": TrialPruned, "stopped": TrialStopped, "failed": TrialFailed}


def study_name(seed: int) -> str:
    return f"pbtnas-bohb-s{seed}"


def bracket_of(name: str, number: int, steps: int, eta: int) -> int:
    """The bracket Optuna's HyperbandPruner puts trial ``number`` of study ``name`` in (its
    formula: a CRC32 of the study name and trial number over the brackets' allocation budgets)."""
    n = n_brackets(steps, eta)
    budgets = [math.ceil(n * eta ** (n - 1 - b) / (n - b)) for b in range(n)]
    x = binascii.crc32(f"{name}_{number}".encode()) % sum(budgets)
    for bracket, width in enumerate(budgets):
        x -= width
        if x < 0:
            return bracket
    raise AssertionError("unreachable")


class BohbSchedule(Schedule):
    """Trials on free lanes until the budget is spent; Optuna's Hyperband decides after every step
    whether a trial goes on, and TPE samples each new trial's genome."""

    recorded_mode = "bohb"
    unit = "trial"
    #: how trials after the stratified start are sampled (their ``source`` in ``trial_started``)
    sampled_by = "tpe"
    #: resume refuses other steps (and never reopens a finished bohb run for more)
    steps_fixed = "its budget and Hyperband brackets follow from them"

    @classmethod
    def make_operator(cls, config: RunConfig) -> Operator:
        # Optuna samples the trials (the registry's operator makes no children): refuse before anything starts
        require("optuna", "bohb")
        return super().make_operator(config)

    def __init__(self, runner):
        super().__init__(runner)
        config = runner.config
        self.trials: dict[int, TrialEntry] = {}
        self.by_uid: dict[int, MemberEntry] = {}
        self.spent = 0  # member steps trained and committed
        self.budget = config.population * config.steps
        self.study: Any = None  # the optuna Study, opened by start() or on resume
        self._handles: dict[int, Any] = {}
        self._inflight: set[int] = set()
        self._ready = False
        self._lanes = 1  # trials trained at once (the backend's slots), set when the loop begins
        self._before = -1  # step_done before the result being committed
        self._last: tuple[TrainResult, MemberEntry] | None = None  # that result and its member

    @property
    def name(self) -> str:
        return study_name(self.runner.config.seed)

    # -- entry points -------------------------------------------------------------------------
    def run_started_part(self, started: RunStarted) -> RunStarted:
        eta, steps = self.runner.config.bohb_eta, self.runner.config.steps
        bohb = {
            "eta": eta,
            "brackets": {b: rungs(steps, eta, b) for b in range(n_brackets(steps, eta))},
            "budget_member_steps": self.budget,
            "study": self.name,
            "study_file": STUDY_FILE,
        }
        return replace(started, bohb=bohb)

    def populate(self) -> None:
        """The study, with the run's stratified population queued as its first trials."""
        (self.runner.store.root / STUDY_FILE).unlink(missing_ok=True)  # a left-over of a start that never committed
        self.study = self._open_study()
        rng = seeding.rng_for(self.runner.config.seed, seeding.INIT)
        for genome in self.runner.task.space.stratified_population(self.runner.config.population, rng):
            self.study.enqueue_trial(dict(genome))
        self._ready = True

    def trial_of(self, member: MemberEntry) -> int | None:
        return member.uid

    def _open_study(self):
        optuna = require("optuna", "bohb")
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        path = self.runner.store.root / STUDY_FILE
        _repair_log(path)
        storage = JournalStorage(JournalFileBackend(str(path)))
        pruner = optuna.pruners.HyperbandPruner(min_resource=1, max_resource=self.runner.config.steps, reduction_factor=self.runner.config.bohb_eta)
        return optuna.create_study(
            storage=storage, study_name=self.name, direction="maximize", sampler=self._sampler(0), pruner=pruner, load_if_exists=True
        )

    def _sampler(self, index: int):
        """TPE seeded per trial from the run's seed, so a resumed run samples what an unbroken one would."""
        import optuna

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(
                seed=seeding.int_seed(self.runner.config.seed, SAMPLER, index),
                n_startup_trials=self.runner.config.population,
                multivariate=True,
                constant_liar=True,
            )

    # -- the loop -----------------------------------------------------------------------------
    def ready(self) -> bool:
        return self._ready

    def begin(self, backend: Backend) -> None:
        if self.study is None:
            self.study = self._open_study()
            self._void_unrecorded()
        self._lanes = max(1, backend.slots)
        self.runner.progress.begin(self.spent // self.runner.config.population)
        for uid in sorted(self.trials):
            if self.trials[uid].state == "running":  # a resume: redo the step that was in flight
                self._submit(backend, uid)
        self._fill(backend, self._lanes)

    def end(self) -> None:
        if self.runner.best is None:
            raise RunError(f"no trial of the {self.recorded_mode} run reached a finite fitness")

    def _fill(self, backend: Backend, lanes: int) -> None:
        """Start new trials while a lane is free and the budget has a member step left."""
        while len(self._inflight) < lanes and self.spent + len(self._inflight) < self.budget:
            self._start_trial(backend)

    def _submit(self, backend: Backend, uid: int) -> None:
        self._inflight.add(uid)
        backend.submit(self.runner.job(self.by_uid[uid], self.trials[uid].steps_done))

    def _start_trial(self, backend: Backend) -> None:
        import optuna

        self.study.sampler = self._sampler(self.runner.next_uid)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            trial = self.study.ask()
            genome = {g.name: trial.suggest_categorical(g.name, list(g.options)) for g in self.runner.task.space.genes}
        genome = self.runner.task.space.validate(genome)
        uid = trial.number
        self._handles[uid] = trial
        self.runner.next_uid = uid + 1
        source = "stratified" if uid < self.runner.config.population else self.sampled_by
        bracket = self._bracket(uid)
        born = -1 if source == "stratified" else self.spent // self.runner.config.population - 1
        member = MemberEntry(
            slot=uid,
            uid=uid,
            genome=genome,
            checkpoint=None,
            born_step=born,
            init_seed=seeding.int_seed(self.runner.config.seed, seeding.MEMBER_INIT, uid),
        )
        self.runner.members.append(member)
        self.by_uid[uid] = member
        self.trials[uid] = TrialEntry(number=uid, bracket=bracket, source=source)
        self.runner.store.append(MemberCreated(slot=uid, uid=uid, genome=genome, seed=member.init_seed, trial=uid))
        self.runner.store.append(
            TrialStarted(
                trial=uid,
                uid=uid,
                bracket=bracket,
                rungs=self._rungs(bracket),
                source=source,
                genome=genome,
                member_steps=self.spent,
            )
        )
        self.runner._write_manifest()  # the trial exists from here on; a resume continues it
        self._submit(backend, uid)

    def _bracket(self, uid: int) -> int:
        """The Hyperband bracket trial ``uid`` belongs to."""
        return bracket_of(self.name, uid, self.runner.config.steps, self.runner.config.bohb_eta)

    def _rungs(self, bracket: int) -> list[int]:
        """The trained-step counts at which a trial of ``bracket`` meets a rung."""
        return rungs(self.runner.config.steps, self.runner.config.bohb_eta, bracket)

    def on_result(self, backend: Backend, result: TrainResult) -> bool:
        """Record one trained step, let Optuna decide, and go on or stop the trial; always commit."""
        r = self.runner
        uid = result.uid
        if not r.settle_lost(backend, self.by_uid[uid], result):
            return False
        member, trial = self.by_uid[uid], self.trials[uid]
        self._inflight.discard(uid)
        self.spent += 1
        r.check_failures(result)
        r.record(member, result, member_steps=self.spent)
        trial.steps_done = result.step + 1
        if self._decide(member, trial, result) is None:
            self._submit(backend, uid)
        self._before = r.step_done
        r.step_done = self.spent // r.config.population - 1
        for step in range(self._before + 1, r.step_done + 1):  # a multi-objective run's hypervolume, before the commit
            r.front_step_done(step)
        self._last = (result, member)
        return True  # the commit point of this result

    def committed(self, backend: Backend) -> None:
        r = self.runner
        assert self._last is not None  # on_result set it before asking for this commit
        result, member = self._last
        self._forget_old_checkpoint(result.uid, result.step)
        population = r.config.population
        r.progress.member_done((self.spent - 1) // population, (self.spent - 1) % population + 1, r.best_fitness, result)
        r._notify("on_member_result", result.step, member, result)
        for step in range(self._before + 1, r.step_done + 1):  # every population x 1 member steps
            r.store.append(StepDone(step=step, best_fitness=r.best_fitness, member_steps=self.spent, mode=self.recorded_mode))
            r.draw_samples(step)
            r._notify("on_step_end", step, r)
            faults.at("after-step", step)
        self._fill(backend, self._lanes)

    def _decide(self, member: MemberEntry, trial: TrialEntry, result: TrainResult) -> str | None:
        """Report to Optuna and end the trial if it is done, pruned, failed or out of budget.
        Returns the end, or None when the trial goes on."""
        from optuna.trial import TrialState

        number, trained = trial.number, result.step + 1
        handle = self._handle_for(number)
        recorded = self.study.get_trials(deepcopy=False)[number]
        if recorded.state.is_finished():  # a resumed run redid a step whose end Optuna already has
            if recorded.state == TrialState.COMPLETE:
                end = "completed"
            elif recorded.state == TrialState.FAIL:
                end = "failed"
            else:
                end = "stopped" if recorded.user_attrs.get("pbtnas_end") == "budget" else "pruned"
            self._end(trial, member, end, trained, rung=self._rung_at(trial, trained))
            return end
        if result.error:
            self.study.tell(number, state=TrialState.FAIL)
            self._end(trial, member, "failed", trained, reason=error_headline(result.error))
            return "failed"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a redone step: Optuna ignores a value it already has
            handle.report(member.fitness, trained)
        if trained >= self.runner.config.steps:
            self.study.tell(number, member.fitness)
            self._end(trial, member, "completed", trained)
            return "completed"
        rung = self._rung_at(trial, trained)
        if handle.should_prune():
            self.study.tell(number, state=TrialState.PRUNED)
            self._end(trial, member, "pruned", trained, rung=rung)
            return "pruned"
        if rung is not None:
            trial.rungs_passed.append(trained)
            self.runner.store.append(
                TrialPromoted(trial=number, uid=number, bracket=trial.bracket, rung=rung, at_step=trained, fitness=fitness_of(member))
            )
        if self.spent + len(self._inflight) >= self.budget:
            handle.set_user_attr("pbtnas_end", "budget")
            self.study.tell(number, state=TrialState.PRUNED)
            self._end(trial, member, "stopped", trained, reason="budget")
            return "stopped"
        return None

    def _rung_at(self, trial: TrialEntry, trained: int) -> int | None:
        """The index of the rung a trial meets after ``trained`` steps (None between rungs)."""
        points = rungs(self.runner.config.steps, self.runner.config.bohb_eta, trial.bracket)
        return points.index(trained) if trained in points else None

    def _end(self, trial: TrialEntry, member: MemberEntry, end: str, trained: int, rung: int | None = None, reason: str | None = None) -> None:
        trial.state = end
        self.runner.store.append(
            ENDED[end](
                trial=trial.number,
                uid=trial.number,
                bracket=trial.bracket,
                at_step=trained,
                fitness=member.fitness,
                member_steps=self.spent,
                rung=rung,
                reason=reason,
            )
        )

    def _handle_for(self, number: int):
        handle = self._handles.get(number)
        if handle is None:  # a trial started before a resume
            import optuna

            frozen = self.study.get_trials(deepcopy=False)[number]
            handle = self._handles[number] = optuna.trial.Trial(self.study, frozen._trial_id)
        return handle

    def _forget_old_checkpoint(self, uid: int, step: int) -> None:
        """A trial keeps its last ``keep_checkpoints`` (at least 1) checkpoints."""
        old = self.runner.store.member_path(step - max(1, self.runner.config.keep_checkpoints), uid)
        if step - max(1, self.runner.config.keep_checkpoints) >= 0 and old.exists():
            old.unlink()
            try:
                old.parent.rmdir()
            except OSError:
                pass

    def _void_unrecorded(self) -> None:
        """Trials Optuna started but the manifest never recorded are failed in the study."""
        from optuna.trial import TrialState

        for frozen in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if frozen.number not in self.trials:
                self.study.tell(frozen.number, state=TrialState.FAIL)
                self.runner.store.append(
                    TrialVoided(trial=frozen.number, uid=frozen.number, reason="started after the last commit of a stopped driver; never trained")
                )

    # -- the end ------------------------------------------------------------------------------
    def final_member(self, selection: str) -> tuple[str, dict, Path]:
        """best-ever: the best fitness any trial reached; best-last: the best trial that trained
        all ``steps`` (by its last fitness), or the best at its last step if none did."""
        if selection == "best-ever" and self.runner.best is not None:
            return selection, self.runner.best.to_dict(), self.runner.store.best_dir / "member.pt"
        alive = [m for m in self.runner.members if m.fitness is not None and m.fitness > float("-inf") and m.checkpoint]
        done = [m for m in alive if self.trials[m.uid].state == "completed"]
        leader = max(done or alive, key=lambda m: (m.fitness, -m.uid))
        info = {
            "uid": leader.uid,
            "fitness": leader.fitness,
            "step": self.trials[leader.uid].steps_done - 1,
            "genome": leader.genome,
            "slot": leader.slot,
        }
        return "best-last", info, self.runner.store.absolute(leader.checkpoint)

    def trial_summary(self, summary: Summary, pruning: bool = True) -> Summary:
        """``summary`` with the budget spent and the trials counted by how they ended, the part
        every trial-based schedule writes (``pruning`` False: its trials are never pruned, and
        the summary says nothing of pruning)."""
        counts = {end: sum(1 for t in self.trials.values() if t.state == end) for end in ENDS}
        return replace(
            summary,
            member_steps=self.spent,
            budget_member_steps=self.budget,
            trials=len(self.trials),
            trials_completed=counts["completed"],
            trials_pruned=counts["pruned"] if pruning else None,
            trials_stopped=counts["stopped"],
            trials_failed=counts["failed"],
        )

    def summary_part(self, summary: Summary) -> Summary:
        config = self.runner.config
        hyperband = {"eta": config.bohb_eta, "min_steps": 1, "max_steps": config.steps, "brackets": n_brackets(config.steps, config.bohb_eta)}
        return replace(self.trial_summary(summary), hyperband=hyperband)

    # -- persistence --------------------------------------------------------------------------
    def manifest_part(self, manifest: Manifest) -> Manifest:
        return replace(manifest, member_steps=self.spent, budget_member_steps=self.budget, trials=list(self.trials.values()))

    def load_fields(self, manifest: Manifest) -> None:
        if manifest.steps != self.runner.config.steps:
            raise ConfigError(
                f"a {self.recorded_mode} run cannot change steps ({manifest.steps} -> {self.runner.config.steps}): {self.steps_fixed}; "
                "start a new run to search longer"
            )
        self.by_uid = {m.uid: m for m in self.runner.members}
        self.trials = {t.number: replace(t, absent=frozenset()) for t in manifest.trials or []}
        self.spent = manifest.member_steps or 0
        self._ready = True

    def resumed_record(self) -> RunResumed:
        # Nothing is voided (from_step is past every step): a redone step's events are written
        # again and readers keep the last of each.
        running = sorted(u for u, t in self.trials.items() if t.state == "running")
        return RunResumed(from_step=self.runner.config.steps, mode=self.recorded_mode, member_steps=self.spent, running=running)


def _repair_log(path: Path) -> None:
    """Cut a torn last line (a kill in the middle of Optuna's append) off the study's log."""
    if not path.is_file():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as fh:
            fh.truncate(data.rfind(b"\n") + 1)


# -- reading a run back (report) -------------------------------------------------------------------
def trial_history(run_dir: str | Path) -> dict | None:
    """Trials and rungs of a bohb run from its journal (the last event of each kind wins, so a
    redone step counts once); None for a run of a schedule without Hyperband rungs."""
    records = RunStore(run_dir).records()
    started = next((r for r in records if isinstance(r, RunStarted)), None)
    if started is None:
        return None
    entry = schedule_of_config(started.config or {})
    if entry is None or not entry.hyperband:
        return None
    trials: dict[int, dict] = {}
    spent: dict[tuple, int] = {}
    for record in records:
        number = getattr(record, "trial", None)
        if number is None:
            continue
        if isinstance(record, TrialStarted):
            trials[number] = {
                "trial": number,
                "source": record.source,
                "bracket": record.bracket,
                "rungs": record.rungs or [],
                "genome": record.genome or {},
                "steps": 0,
                "fitness": {},
                "promoted": {},
                "end": "running",
                "end_step": None,
                "end_rung": None,
            }
        elif number not in trials:
            continue
        elif isinstance(record, MemberTrained):
            spent[number, record.step] = 1
            trials[number]["fitness"][record.step + 1] = record.fitness
            trials[number]["steps"] = max(trials[number]["steps"], record.step + 1)
        elif isinstance(record, TrialPromoted):
            trials[number]["promoted"][record.rung] = record.at_step
        elif isinstance(record, (TrialCompleted, TrialPruned, TrialStopped, TrialFailed)):
            trials[number].update(end=record.event[len("trial_") :], end_step=record.at_step, end_rung=record.rung)
        elif isinstance(record, TrialVoided):
            trials[number].update(end="voided", end_step=None, end_rung=None)
    config = started.config
    return {
        "trials": [trials[n] for n in sorted(trials)],
        "member_steps": len(spent),
        "budget_member_steps": config["population"] * config["steps"],
        "eta": config.get("bohb_eta", 3),
        "steps": config["steps"],
        "brackets": (started.bohb or {}).get("brackets", {}),
    }


def rung_table(history: dict) -> list[dict]:
    """Per bracket and rung: trials that reached it, went on, were pruned there."""
    rows = []
    brackets = {int(b): r for b, r in history["brackets"].items()}
    for bracket in sorted(brackets):
        mine = [t for t in history["trials"] if t["bracket"] == bracket]
        for k, at in enumerate(brackets[bracket]):
            reached = [t for t in mine if t["steps"] >= at]
            rows.append(
                {
                    "bracket": bracket,
                    "rung": k,
                    "at_step": at,
                    "reached": len(reached),
                    "promoted": sum(1 for t in mine if k in t["promoted"] or str(k) in t["promoted"]),
                    "pruned": sum(1 for t in mine if t["end"] == "pruned" and t["end_rung"] == k),
                }
            )
        rows.append(
            {
                "bracket": bracket,
                "rung": "end",
                "at_step": history["steps"],
                "reached": sum(1 for t in mine if t["steps"] >= history["steps"]),
                "promoted": None,
                "pruned": None,
            }
        )
    return rows


SCHEDULE = BohbSchedule

__all__ = ["BohbSchedule", "SCHEDULE", "bracket_of", "trial_history", "rung_table", "STUDY_FILE"]
