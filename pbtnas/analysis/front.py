"""The Pareto front of a multi-objective run, as ``summary.json`` holds it, for the tools that show
or use it: ``pbtnas status`` lists it, the report draws it, ``pbtnas export --pick`` chooses from
it and ``pbtnas compare`` measures it. Reads files only; never imports task code.

A run has a front when it had more than one objective or any constraint; its summary then holds
``objectives``, ``constraints``, ``pareto_front``, ``hypervolume`` and ``hypervolume_reference``
(docs/multi-objective.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from pbtnas.errors import PbtnasError
from pbtnas.search.objectives import Constraint, Objective, parse_constraints


@dataclass
class Front:
    """The multi-objective part of one run's summary."""

    objectives: list[Objective]
    constraints: list[str]
    members: list[dict]  # the summary's pareto_front entries
    hypervolume: list[dict] = field(default_factory=list)  # [{"step", "value"}]
    reference: dict[str, float] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [o.name for o in self.objectives]

    def axis_label(self, name: str) -> str:
        """An objective's name with its direction, as axes and table headers show it."""
        objective = next(o for o in self.objectives if o.name == name)
        return f"{name} ({'higher' if objective.direction == 'max' else 'lower'} is better)"

    def final_hypervolume(self) -> float | None:
        return float(self.hypervolume[-1]["value"]) if self.hypervolume else None


def read_front(summary: dict | None) -> Front | None:
    """The front of a run's summary, or None for a single-objective run (or an unfinished one)."""
    if not summary or not isinstance(summary.get("pareto_front"), list):
        return None
    objectives = [
        Objective(str(o["name"]), str(o.get("direction", "max"))) for o in summary.get("objectives") or [] if isinstance(o, dict) and "name" in o
    ]
    if not objectives:
        return None
    return Front(
        objectives=objectives,
        constraints=[str(c) for c in summary.get("constraints") or []],
        members=[m for m in summary["pareto_front"] if isinstance(m, dict)],
        hypervolume=[h for h in summary.get("hypervolume") or [] if isinstance(h, dict) and "value" in h],
        reference={str(k): float(v) for k, v in (summary.get("hypervolume_reference") or {}).items()},
    )


def values_of(member: dict, key: str = "final_objectives") -> dict[str, float]:
    """A front member's objective values: the re-scored ``final_objectives`` where it has them,
    else the values seen during the search (``objectives``)."""
    values = member.get(key) or member.get("objectives") or {}
    return {str(k): float(v) for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def pick(front: Front, where: str, run_dir: Any = "the run") -> dict:
    """The best feasible front member by the first objective, feasible meaning: marked feasible
    by the run and meeting every constraint in ``where`` (``"params<=50000"``, several joined by
    commas). One :class:`PbtnasError` line when none is."""
    wanted: list[Constraint] = parse_constraints([c for c in where.split(",") if c.strip()]) if where.strip() else []
    known = set(front.names) | {k for m in front.members for k in values_of(m)}
    unknown = sorted({c.name for c in wanted} - known)
    if unknown:
        raise PbtnasError(f"--pick names {', '.join(unknown)}, which {run_dir} does not record; its front has: {', '.join(sorted(known))}")
    candidates = [m for m in front.members if m.get("feasible", True) and all(c.violation(values_of(m)) == 0.0 for c in wanted)]
    if not candidates:
        raise PbtnasError(
            f"no feasible member of the Pareto front of {run_dir} meets {where!r} ({len(front.members)} on the front; see: pbtnas status {run_dir})"
        )
    first = front.objectives[0]
    sign = 1.0 if first.direction == "max" else -1.0

    def key(m: dict) -> tuple[float, int]:
        value = values_of(m).get(first.name, math.nan)
        return (sign * value if math.isfinite(value) else -math.inf, -int(m.get("uid", 0)))

    return max(candidates, key=key)


def lineage(uid: int, parents: dict[int, list[int]]) -> list[list[int]]:
    """The chain of ancestors of ``uid``, generation by generation (parents, grandparents, ...),
    from a uid -> parents map; every ancestor appears once, in the nearest generation."""
    chain: list[list[int]] = []
    seen = {uid}
    current = [uid]
    while current:
        following: list[int] = []
        for u in current:
            for p in parents.get(u, []):
                if p not in seen:
                    seen.add(p)
                    following.append(p)
        if following:
            chain.append(following)
        current = following
    return chain


__all__ = ["Front", "lineage", "pick", "read_front", "values_of"]
