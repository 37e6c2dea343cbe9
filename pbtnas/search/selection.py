"""Selection decisions of synchronous, generational PBT (docs/algorithm.md §2): pure functions.

Given every slot's latest fitness and an rng, decide which slots are replaced and which two
parents each child has. No files, processes or tensors are touched here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

#: orders slots best first from their scores and an rng: :func:`rank` for one fitness, or a
#: multi-objective ranking (:func:`pbtnas.search.objectives.rank`) over each slot's values
Ranker = Callable[[dict[int, Any], np.random.Generator], list[int]]


@dataclass(frozen=True)
class ChildPlan:
    """Slot ``slot`` is replaced by a child of ``primary`` (the fitter) and ``donor`` (slots)."""

    slot: int
    primary: int
    donor: int


def pool_sizes(population: int, tau: float) -> tuple[int, int]:
    """``(n_parents, n_children)`` = ``(max(2, int(N tau)), max(1, int(N tau)))``."""
    return max(2, int(population * tau)), max(1, int(population * tau))


def clean_fitness(value: float | None) -> float:
    """NaN and missing fitness rank below every real value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return float("-inf")
    return float(value)


def rank(fitness: dict[int, float], rng: np.random.Generator) -> list[int]:
    """Slots ordered best first. Ties are broken by a seeded random permutation, not by slot."""
    slots = sorted(fitness)
    tiebreak = {slot: int(r) for slot, r in zip(slots, rng.permutation(len(slots)))}
    return sorted(slots, key=lambda s: (-clean_fitness(fitness[s]), tiebreak[s]))


def plan_generation(fitness: dict[int, Any], tau: float, rng: np.random.Generator, ranker: Ranker = rank) -> list[ChildPlan]:
    """Replace the bottom ``n_children`` slots with children of pairs drawn from the top pool.

    For each child two distinct members are drawn uniformly from the parent pool; the fitter
    (the better ranked) becomes the primary parent. Parents are never among the replaced slots.
    ``ranker`` orders the slots (default: by one fitness).
    """
    order = ranker(fitness, rng)
    n_parents, n_children = pool_sizes(len(order), tau)
    if n_parents > len(order) - n_children:
        raise ValueError(f"tau={tau} leaves no parents among the survivors of a population of {len(order)}")
    pool = order[:n_parents]
    position = {slot: i for i, slot in enumerate(order)}
    plans = []
    for slot in sorted(order[len(order) - n_children :]):
        a, b = (pool[int(i)] for i in rng.choice(len(pool), size=2, replace=False))
        primary, donor = (a, b) if position[a] < position[b] else (b, a)
        plans.append(ChildPlan(slot=slot, primary=primary, donor=donor))
    return plans


def should_exploit(step: int, total_steps: int, every_first_half: int = 1) -> bool:
    """Exploit after ``step`` (0-based)? Never after the last; in the first half only every k-th."""
    if step >= total_steps - 1:
        return False
    if every_first_half > 1 and step + 1 <= total_steps // 2:
        return (step + 1) % every_first_half == 0
    return True
