"""What a resume may change, and why the rest may not: the one policy of ``pbtnas resume --set``
and :func:`pbtnas.resume`.

A resumed run must continue the search it started: the same population, seed, algorithm and
task, so that its result matches an uninterrupted run. What only decides *how long* and *where*
it runs may change: the budget (``steps``), workers, backend, Ray options, loggers and the
device. More steps for a finished run reopen it: it trains on from its final population and
delivers again (the earlier delivery is kept, see :mod:`pbtnas.engine.runner`). The resume
writes every accepted change to ``config.yaml`` (a later resume keeps it) and journals it as
``config_changed``; this module only decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pbtnas.config import config_from_dict
from pbtnas.errors import ConfigError

#: run options a resume may change: they decide how long and where the search runs, not what it is
SAFE = {
    "steps": "the budget",
    "workers": "local worker processes",
    "backend": "where members train",
    "ray_address": "Ray cluster",
    "cpus_per_member": "Ray resources",
    "gpus_per_member": "Ray resources",
    "storage": "Ray storage",
    "loggers": "experiment loggers",
    "threads_per_member": "torch threads per member",
    "max_retries": "retries of a lost worker",
    "keep_checkpoints": "checkpoints kept on disk",
    "final_selection": "which network the run delivers at the end",
    "description": "free text",
}
#: task options a resume may change
SAFE_TASK = {"device": "torch device"}

#: why the others may not change
REASONS = {
    "population": "the population lives in the checkpoints and population.json",
    "seed": "every random stream of the run derives from it, so the run would no longer match itself",
    "algorithm": "it changes how the population is searched",
    "mode": "synchronous and asynchronous runs keep different manifests",
    "task.name": "the members are networks of this task",
}
CHANGES_SEARCH = "it changes the search; start a new run with 'pbtnas run' instead"


@dataclass(frozen=True)
class ResumePlan:
    """What a resume runs with: the whole config, the accepted changes ``(key, old, new)`` (task
    options as ``task.KEY``), and where the run stood (steps done, whether it had finished)."""

    config: dict
    changes: list[tuple[str, Any, Any]] = field(default_factory=list)
    steps_done: int = 0
    finished: bool = False

    @property
    def overrides(self) -> dict:
        """The changed top-level config keys with their new values (a task option brings the
        whole ``task`` section)."""
        keys = {key.partition(".")[0] for key, _, _ in self.changes}
        return {key: self.config[key] for key in keys}

    @property
    def extends(self) -> bool:
        """A finished run gets more steps: it trains on and delivers again."""
        return self.finished and self.config["steps"] > self.steps_done


def requested(overrides: dict) -> dict:
    """Keyword overrides as a config fragment: ``task.device="cpu"`` and ``task={"device": ...}``
    both reach the task section."""
    out: dict = {}
    for key, value in overrides.items():
        section, dot, name = key.partition(".")
        if dot:
            target = out.setdefault(section, {})
            if not isinstance(target, dict):
                raise ConfigError(f"{key}: {section!r} is not a section")
            target[name] = value
        elif key == "task" and isinstance(value, dict):
            out.setdefault("task", {}).update(value)
        else:
            out[key] = value
    return out


def plan_resume(stored: dict, overrides: dict, steps_done: int, finished: bool, steps_fixed: str | None = None) -> ResumePlan:
    """The plan of a resume of a run whose ``config.yaml`` holds ``stored``, ``steps_done`` steps
    done and ``finished`` (delivered) or not. ``overrides`` are the requested changes (keyword form,
    see :func:`requested`); ``steps_fixed`` says why this run's schedule cannot change ``steps`` at
    all (None: it can).

    Raises :class:`ConfigError` naming every key that may not change, with the reason, or why the
    new budget does not fit."""
    wanted = requested(overrides)
    task_requested = wanted.pop("task", {}) or {}
    if not isinstance(task_requested, dict):
        raise ConfigError("task=... is not allowed on resume; set single task options as task.KEY=VALUE")
    merged = {**stored, **wanted, "task": {**stored.get("task", {}), **task_requested}}
    config = config_from_dict(merged, where="config").to_dict()  # unknown keys and bad types, as 'run' says
    before = config_from_dict(dict(stored), where="config").to_dict()

    changes, refused = [], []
    for key in wanted:
        if config[key] != before.get(key):
            changes.append((key, before.get(key), config[key]))
            if key not in SAFE:
                refused.append(f"{key} ({REASONS.get(key, CHANGES_SEARCH)})")
    for key in task_requested:
        old, new = before["task"].get(key), config["task"].get(key)
        if old != new:
            changes.append((f"task.{key}", old, new))
            if key not in SAFE_TASK:
                refused.append(f"task.{key} ({REASONS.get(f'task.{key}', CHANGES_SEARCH)})")
    if refused:
        allowed = ", ".join(sorted(SAFE) + [f"task.{k}" for k in SAFE_TASK])
        raise ConfigError(f"resume cannot change {'; '.join(refused)}. It may change: {allowed}")
    new_steps = config["steps"]
    if finished and "steps" in wanted and new_steps <= steps_done and not steps_fixed:
        # asked of a finished run, even unchanged, steps=N means "train on": say it cannot
        raise ConfigError(
            f"steps={new_steps} leaves nothing to train: the run has finished after {steps_done} steps "
            f"(give it more budget with steps={steps_done + 1} or more)"
        )
    if new_steps != before["steps"]:
        if steps_fixed:
            raise ConfigError(
                f"a {config['algorithm']} run cannot change steps ({before['steps']} -> {new_steps}): {steps_fixed}; start a new run to search longer"
            )
        if new_steps <= steps_done:
            raise ConfigError(f"steps={new_steps} leaves nothing to train: {steps_done} steps are already done (use at least {steps_done + 1})")
    return ResumePlan(config=config, changes=changes, steps_done=steps_done, finished=finished)


__all__ = ["CHANGES_SEARCH", "REASONS", "SAFE", "SAFE_TASK", "ResumePlan", "plan_resume", "requested"]
