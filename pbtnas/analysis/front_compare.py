"""The hypervolume of each run of a multi-objective comparison, measured from one reference point.

Each run's own ``hypervolume`` in ``summary.json`` is measured from a reference point fixed by its
own first step, so two runs' figures are not comparable. A comparison therefore measures every
run's final front again from one shared reference point, chosen from the union of all the
comparison's fronts: per objective the worst value any run's front member holds, moved a further
10% of that union's range in the worse direction (``pbtnas.search.objectives.reference_point``),
so that every front member, the extreme ones included, adds volume. The values measured are the
front members' ``final_objectives`` (re-scored at the end, e.g. on the test split) and only the
feasible members count. Adding a run to the comparison can move the reference point, and so
every run's figure; the test pairs runs measured from the same point, so it stays fair.
"""

from __future__ import annotations

from pbtnas.analysis.front import read_front, values_of
from pbtnas.search.objectives import Objective, hypervolume, reference_point


def front_values(summary: dict | None) -> list[dict[str, float]] | None:
    """The final objective values of a finished run's feasible front members (None: the run has
    no front, i.e. it had one objective or has not finished)."""
    front = read_front(summary)
    if front is None:
        return None
    return [values_of(m) for m in front.members if m.get("feasible", True)]


def shared_hypervolumes(fronts: dict, objectives: list[Objective]) -> tuple[dict[str, float], dict]:
    """``(reference point, key -> hypervolume)`` for runs given as ``key -> front values``."""
    union = [v for values in fronts.values() for v in values]
    if not union:
        return {}, {}
    reference = reference_point(union, objectives)
    return reference, {key: hypervolume(values, objectives, reference) for key, values in fronts.items()}


__all__ = ["front_values", "shared_hypervolumes"]
