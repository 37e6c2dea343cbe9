"""Which network a run delivers: the top-k kept during the run, re-scored at the end on data that
no fitness evaluation saw (``final_selection: top-k-reevaluated``).

Picking the best of many noisy fitness evaluations on one fixed validation split favours the
network that was luckiest on that split (selection over-fitting): the more evaluations, the more
optimistic the winner's validation score. Keeping the ``reevaluate_top_k`` best distinct members
seen during the run and choosing among them on an untouched *selection* split removes that bias
at the cost of a few more evaluations and a split the task must hold apart.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass
class Contender:
    """One of the top-k members kept for the final choice: its best snapshot and fitness."""

    uid: int
    fitness: float
    step: int
    genome: dict
    checkpoint: str  # relative to the run directory

    def to_dict(self) -> dict:
        return asdict(self)


def admit(top: list[Contender], candidate: Contender, k: int) -> tuple[list[Contender], list[Contender]]:
    """The new top-k list after ``candidate`` (one entry per member, its best snapshot; ties keep
    the earlier entry) and the entries that fell out (whose checkpoints may be deleted)."""
    if not math.isfinite(candidate.fitness):
        return top, []
    same = [c for c in top if c.uid == candidate.uid]
    if same and same[0].fitness >= candidate.fitness:
        return top, []
    others = [c for c in top if c.uid != candidate.uid]
    ranked = sorted(others + [candidate], key=lambda c: -c.fitness)  # stable: earlier first on ties
    kept, dropped = ranked[:k], ranked[k:] + same
    return kept, dropped


def choose(scored: list[tuple[Contender, float]]) -> tuple[Contender, float]:
    """The contender with the best selection score; ties go to the higher search fitness."""
    return max(scored, key=lambda cs: (cs[1] if math.isfinite(cs[1]) else -math.inf, cs[0].fitness))
