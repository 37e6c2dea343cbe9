"""The one registry of schedules: their names, how a config picks one, and where each lives.

A schedule decides, result by result, who trains next, who is replaced by a child, which trial
stops or starts (:class:`pbtnas.engine.schedule.Schedule`). ``run`` and ``resume`` build the one a
config names from here, the config and the CLI take their ``mode`` choices from here, and loggers
ask here whether a schedule commits each result on its own. This module names code by its dotted
path and imports none of it, so that the floors below the engine (config, journal reader) can read
it without importing the engine. An algorithm that brings its own schedule (bohb) says so in the
algorithm registry, :data:`pbtnas.search.algorithms.ALGORITHMS`, read here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pbtnas.search.algorithms import ALGORITHMS


@dataclass(frozen=True)
class ScheduleEntry:
    """One schedule family as the registry lists it."""

    #: the module that defines it (its ``SCHEDULE`` attribute is the class), imported when a run uses it
    module: str
    #: the ``mode`` value a config selects it with (None: an algorithm brings it, its ``schedule``
    #: in :data:`pbtnas.search.algorithms.ALGORITHMS`)
    mode: str | None = None
    #: whether it commits every result as it comes (no barrier): loggers report each result then
    each_result_committed: bool = False
    #: how it schedules, said in the config's error when a mode is set beside the algorithm
    how: str = ""
    #: whether its trials climb Hyperband's rungs (``bohb_eta``): the config then checks that
    #: population x steps holds a bracket, and the report shows the trials and their rungs
    hyperband: bool = False
    #: (module, extra) it needs installed: ``pbtnas compare`` checks it before any of its runs trains
    requires: tuple[str, str] | None = None


#: adding a schedule: its module (a Schedule subclass named by ``SCHEDULE``) and one line here
SCHEDULES: dict[str, ScheduleEntry] = {
    "sync": ScheduleEntry("pbtnas.engine.sync_schedule", mode="sync"),
    "async": ScheduleEntry("pbtnas.engine.async_schedule", mode="async", each_result_committed=True),
    "bohb": ScheduleEntry(
        "pbtnas.engine.bohb",
        each_result_committed=True,
        how="without a barrier by itself (asynchronous successive halving)",
        hyperband=True,
        requires=("optuna", "bohb"),
    ),
    "nsga2": ScheduleEntry(
        "pbtnas.engine.nsga2",
        each_result_committed=True,
        how="as Optuna trials trained from scratch",
        requires=("optuna", "bohb"),
    ),
}

#: the config's ``mode`` choices (``pbtnas run --mode``)
MODES: tuple[str, ...] = tuple(e.mode for e in SCHEDULES.values() if e.mode)


def schedule_name(algorithm: str | None, mode: str | None) -> str:
    """The schedule a config (or a stored ``config.yaml``) runs under: the one its algorithm
    brings, else the one its mode names (``sync`` when it names none)."""
    own = _brought_by(algorithm)
    if own is not None:
        return own
    for name, entry in SCHEDULES.items():
        if entry.mode == (mode or "sync"):
            return name
    raise ValueError(f"no schedule for algorithm {algorithm!r} and mode {mode!r}")


def schedule_of_algorithm(algorithm: str | None) -> ScheduleEntry | None:
    """The schedule ``algorithm`` brings with it (a config then leaves ``mode`` at its default), or None."""
    own = _brought_by(algorithm)
    return None if own is None else SCHEDULES[own]


def _brought_by(algorithm: str | None) -> str | None:
    """The name of the schedule the algorithm registry says ``algorithm`` brings, or None."""
    entry = ALGORITHMS.get(algorithm) if isinstance(algorithm, str) else None
    return None if entry is None else entry.schedule


def schedule_of_config(config: Mapping) -> ScheduleEntry | None:
    """The schedule ``config`` (a dict, as stored) runs under, or None for a config no schedule
    takes (a run refuses it; a reader of a damaged or foreign run directory shows what it can)."""
    try:
        return SCHEDULES[schedule_name(config.get("algorithm"), config.get("mode"))]
    except ValueError:
        return None


def each_result_committed(config: dict) -> bool:
    """Whether the schedule of ``config`` (a dict, as stored) commits every result as it comes."""
    entry = schedule_of_config(config)
    return entry is not None and entry.each_result_committed


__all__ = ["MODES", "SCHEDULES", "ScheduleEntry", "each_result_committed", "schedule_name", "schedule_of_algorithm", "schedule_of_config"]
