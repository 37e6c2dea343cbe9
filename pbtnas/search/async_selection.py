"""Selection decisions of asynchronous PBT-NAS (docs/algorithm.md §6): pure functions, no barrier.

When a member finishes step ``t`` it is ranked against every member's fitness at comparable
training progress: a member that has also finished ``t`` counts with its fitness at ``t``; one
that is behind counts with its latest fitness. If the finisher lands in the bottom ``tau`` it is
replaced at once by a child of two members drawn from the top ``tau`` (the fitter is primary).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pbtnas.search.selection import ChildPlan, Ranker, pool_sizes, rank


def comparable_fitness(history: dict[int, dict[int, Any]], step: int) -> dict[int, Any]:
    """Per slot: fitness at ``step`` if reached, else the latest before it; slots with no result are left out."""
    out = {}
    for slot, by_step in history.items():
        if not by_step:
            continue
        if step in by_step:
            out[slot] = by_step[step]
            continue
        earlier = [s for s in by_step if s < step]
        out[slot] = by_step[max(earlier)] if earlier else by_step[min(by_step)]
    return out


def plan_replacement(
    slot: int, step: int, history: dict[int, dict[int, Any]], population: int, tau: float, rng: np.random.Generator, ranker: Ranker = rank
) -> ChildPlan | None:
    """A child plan for ``slot`` if it is in the bottom ``tau`` after finishing ``step``, else None.

    No decision is taken until every slot has reported at least once: an early finisher would
    otherwise be judged against a handful of members. ``ranker`` orders the slots (default: by
    one fitness; a run with several objectives keeps each slot's values in ``history``).
    """
    fitness = comparable_fitness(history, step)
    if len(fitness) < population or slot not in fitness:
        return None
    order = ranker(fitness, rng)
    n_parents, n_children = pool_sizes(population, tau)
    if slot not in order[len(order) - n_children :]:
        return None
    pool = order[:n_parents]
    position = {s: i for i, s in enumerate(order)}
    a, b = (pool[int(i)] for i in rng.choice(len(pool), size=2, replace=False))
    primary, donor = (a, b) if position[a] < position[b] else (b, a)
    return ChildPlan(slot=slot, primary=primary, donor=donor)
