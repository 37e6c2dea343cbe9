"""What ``pbtnas resume RUN_DIR --set key=value`` may change, and why the rest may not.

A resumed run must continue the search it started: the same population, seed, algorithm and
task, so that its result matches an uninterrupted run. What only decides *how long* and *where*
it runs may change: the budget (``steps``), workers, backend, Ray options, loggers and the
device. Every accepted change is written to ``config.yaml`` (a later resume keeps it) and
journaled as ``config_changed``.
"""

from __future__ import annotations

from pbtnas.config import apply_overrides, config_from_dict
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


def resume_changes(
    stored: dict, assignments: list[str], flags: dict, done_steps: int, finished: bool
) -> tuple[dict, list[tuple[str, object, object]]]:
    """The config a resume runs with and the changes made: ``(new config dict, [(key, old, new)])``.

    Raises :class:`ConfigError` naming every key that may not change, with the reason."""
    requested = apply_overrides({}, assignments)
    for key, value in flags.items():
        if key == "device":
            requested.setdefault("task", {})["device"] = value
        else:
            requested[key] = value
    task_requested = requested.pop("task", {}) or {}
    if not isinstance(task_requested, dict):
        raise ConfigError("--set task=... is not allowed; set single task options as task.KEY=VALUE")
    merged = {**stored, **requested, "task": {**stored.get("task", {}), **task_requested}}
    config = config_from_dict(merged, where="config").to_dict()  # unknown keys and bad types, as 'run' says
    before = config_from_dict(dict(stored), where="config").to_dict()

    changes, refused = [], []
    for key in requested:
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
    if new_steps != before["steps"]:
        if finished:
            raise ConfigError(
                f"the run has finished ({done_steps} steps) and its final network was evaluated; "
                "steps cannot change any more: start a new run to search longer"
            )
        if new_steps <= done_steps:
            raise ConfigError(f"steps={new_steps} leaves nothing to train: {done_steps} steps are already done (use at least {done_steps + 1})")
    return config, changes
