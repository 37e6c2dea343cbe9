"""NSGA-II at PBT-NAS's budget (``algorithm: nsga2``): Optuna's ``NSGAIISampler``, trials trained
from scratch.

A *trial* is one architecture sampled from the task's search space (every gene a
``suggest_categorical``), trained from scratch for ``nsga2_trial_steps`` steps through the same
task code and backends as every other run, then told to Optuna with all its objective values
(the run's ``objectives``; the fitness alone in a single-objective run). Constraints go to the
sampler as violations (``constraints_func``), so it prefers feasible trials as PBT-NAS does. The
first ``population`` trials are the run's stratified initial population, NSGA-II's first
generation; each later generation has ``population`` trials. As many trials train at once as the
backend has workers.

Budget, in member steps (docs/multi-objective-tools.md): every step of every trial costs one,
like one member step of PBT-NAS, so the run trains ``population x steps`` member steps: about
``population x steps / nsga2_trial_steps`` trials (a trial that would overrun the budget is
stopped early, told to Optuna as pruned). The trial length trades training for search: each
trial's network trains ``nsga2_trial_steps`` steps where a PBT-NAS member trains (and inherits)
for ``steps``, while NSGA-II gets ``steps / nsga2_trial_steps`` generations. The default, a
quarter of ``steps``, gives it four generations; set ``nsga2_trial_steps: STEPS`` for one
generation of fully trained networks.

Everything else - the study kept in ``RUN_DIR/optuna-study.log`` and written before the manifest,
resuming after a kill by redoing the step in flight, checkpoints per trial, the journal's
``trial_*`` events - is the bohb schedule's (:mod:`pbtnas.engine.bohb`), whose machinery this
class reuses; only the sampler, the trial length and the decision after a step differ.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import replace

from pbtnas.backends import TrainResult
from pbtnas.config import RunConfig
from pbtnas.engine import seeding
from pbtnas.engine.bohb import SAMPLER, BohbSchedule, _repair_log
from pbtnas.errors import error_headline, require
from pbtnas.rundir.records import MemberEntry, RunStarted, Summary, TrialEntry

STUDY_FILE = "optuna-study.log"


def trial_steps(config: RunConfig) -> int:
    """Steps per trial: ``nsga2_trial_steps``, or a quarter of ``steps`` (at least 1) when 0."""
    return config.nsga2_trial_steps or max(1, config.steps // 4)


class Nsga2Schedule(BohbSchedule):
    """Trials on free lanes until the budget is spent; each trains ``nsga2_trial_steps`` steps and
    is told to NSGA-II with all its objective values, which samples the next generations."""

    recorded_mode = "nsga2"
    sampled_by = "nsga2"
    steps_fixed = "its budget and trial count follow from them"

    @property
    def name(self) -> str:
        return f"pbtnas-nsga2-s{self.runner.config.seed}"

    @property
    def length(self) -> int:
        return trial_steps(self.runner.config)

    def run_started_part(self, started: RunStarted) -> RunStarted:
        nsga2 = {
            "trial_steps": self.length,
            "trials": math.ceil(self.budget / self.length),
            "generation_size": self.runner.config.population,
            "budget_member_steps": self.budget,
            "study": self.name,
            "study_file": STUDY_FILE,
        }
        return replace(started, nsga2=nsga2)

    def _open_study(self):
        optuna = require("optuna", "bohb")
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        path = self.runner.store.root / STUDY_FILE
        _repair_log(path)
        storage = JournalStorage(JournalFileBackend(str(path)))
        directions = ["maximize" if o.direction == "max" else "minimize" for o in self.runner.objectives]
        return optuna.create_study(
            storage=storage,
            study_name=self.name,
            directions=directions,
            sampler=self._sampler(0),
            pruner=optuna.pruners.NopPruner(),
            load_if_exists=True,
        )

    def _sampler(self, index: int):
        """NSGA-II seeded per trial from the run's seed, so a resumed run samples what an unbroken
        one would (the sampler's generations live in the study, not in the sampler)."""
        import optuna

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.NSGAIISampler(
                population_size=self.runner.config.population,
                seed=seeding.int_seed(self.runner.config.seed, SAMPLER, index),
                constraints_func=_violations if self.runner.constraints else None,
            )

    def _bracket(self, uid: int) -> int:
        return 0  # no Hyperband: every trial is of the one "bracket"

    def _rungs(self, bracket: int) -> list[int]:
        return [self.length]  # a trial ends after this many steps

    def _decide(self, member: MemberEntry, trial: TrialEntry, result: TrainResult) -> str | None:
        """Tell Optuna the trial's values once it has trained ``nsga2_trial_steps`` steps; end it
        if it failed or the budget is spent. Returns the end, or None when it goes on."""
        from optuna.trial import TrialState

        number, trained = trial.number, result.step + 1
        recorded = self.study.get_trials(deepcopy=False)[number]
        if recorded.state.is_finished():  # a resumed run redid a step whose end Optuna already has
            end = {TrialState.COMPLETE: "completed", TrialState.FAIL: "failed"}.get(recorded.state, "stopped")
            self._end(trial, member, end, trained)
            return end
        if result.error:
            self.study.tell(number, state=TrialState.FAIL)
            self._end(trial, member, "failed", trained, reason=error_headline(result.error))
            return "failed"
        if trained >= self.length:
            values = self._values(member)
            if values is None:  # a non-finite objective: NSGA-II cannot rank it
                self.study.tell(number, state=TrialState.FAIL)
                self._end(trial, member, "failed", trained, reason="an objective is not finite")
                return "failed"
            if self.runner.constraints:
                self._handle_for(number).set_user_attr("constraints", [c.violation(member.objectives or {}) for c in self.runner.constraints])
            self.study.tell(number, values)
            self._end(trial, member, "completed", trained)
            return "completed"
        if self.spent + len(self._inflight) >= self.budget:
            self._handle_for(number).set_user_attr("pbtnas_end", "budget")
            self.study.tell(number, state=TrialState.PRUNED)
            self._end(trial, member, "stopped", trained, reason="budget")
            return "stopped"
        return None

    def _values(self, member: MemberEntry) -> list[float] | None:
        """The member's objective values in the study's order (its fitness in a single-objective
        run), or None when one is missing or not finite."""
        known = member.objectives if member.objectives is not None else {"fitness": member.fitness}
        values = [known.get(o.name) for o in self.runner.objectives]
        if any(v is None or not math.isfinite(float(v)) for v in values):
            return None
        return [float(v) for v in values if v is not None]

    def summary_part(self, summary: Summary) -> Summary:
        counted = self.trial_summary(summary, pruning=False)
        return replace(counted, nsga2={"trial_steps": self.length, "generation_size": self.runner.config.population})


def _violations(frozen_trial) -> list[float]:
    """Optuna's ``constraints_func``: the violations recorded on the trial (<= 0 is feasible)."""
    return list(frozen_trial.user_attrs["constraints"])


SCHEDULE = Nsga2Schedule

__all__ = ["Nsga2Schedule", "SCHEDULE", "trial_steps"]
