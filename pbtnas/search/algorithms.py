"""The algorithms a run can use: which operator makes a child, and whether exploitation happens.

Every algorithm shares the population, initialisation, budget and selection; they differ only in
how a replaced slot gets its new member.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from pbtnas.search.operators import ChildRecord, mix, mutate, shrink_perturb_whole
from pbtnas.search.space import Genome
from pbtnas.search.state import MemberState
from pbtnas.search.task_protocol import TaskProtocol


@dataclass
class Algorithm:
    """How children are made. ``exploits`` False means no member is ever replaced."""

    name: str
    exploits: bool
    operator: str  # "mix", "mutation" or "none"
    lam: float = 0.4
    gam: float = 0.1
    p_donor: float = 0.25
    donor_moments: bool = False
    sp_buffers: str = "all"  # "parameters": buffers of transplanted layers are copied, not perturbed
    self_donor: bool = False  # no-mixing ablation: the donor is the primary parent itself
    refresh_every_step: bool = False  # random-sp ablation

    def make_child(
        self,
        task: TaskProtocol,
        primary: tuple[Genome, MemberState],
        donor: tuple[Genome, MemberState],
        rng: np.random.Generator,
    ) -> tuple[Genome, MemberState, ChildRecord]:
        if self.operator == "mix":
            source = primary if self.self_donor else donor
            genome, state, record = mix(
                task,
                primary,
                source,
                rng,
                p_donor=self.p_donor,
                lam=self.lam,
                gam=self.gam,
                donor_moments=self.donor_moments,
                sp_buffers=self.sp_buffers,
            )
            if self.self_donor:  # nothing came from a second parent: say what was done instead
                record.details["genes_perturbed"] = record.genes_from_donor
                record.genes_from_donor = []
                record.details["self_donor"] = True
                record.single_parent = True
            return genome, state, record
        if self.operator == "mutation":
            return mutate(task, primary, rng)
        raise RuntimeError(f"algorithm {self.name!r} makes no children")

    def refresh(self, task: TaskProtocol, genome: Genome, state: MemberState, rng: np.random.Generator):
        """Shrink-perturb a whole member (random-sp ablation)."""
        return shrink_perturb_whole(task, genome, state, rng, self.lam, self.gam)


class AlgorithmSettings(Protocol):
    """The run config's keys an algorithm is built from (:class:`~pbtnas.config.RunConfig` has
    them); declared here so that the search layer does not import the config above it."""

    algorithm: str
    p_donor: float
    donor_moments: bool
    sp_buffers: str
    sp_lambda: float
    sp_gamma: float


def algorithm_from_config(config: AlgorithmSettings) -> Algorithm:
    common: dict[str, Any] = {"p_donor": config.p_donor, "donor_moments": config.donor_moments, "sp_buffers": config.sp_buffers}
    lam, gam = config.sp_lambda, config.sp_gamma
    name = config.algorithm
    if name == "pbtnas":
        return Algorithm(name, True, "mix", lam, gam, **common)
    if name == "no-mixing":
        return Algorithm(name, True, "mix", lam, gam, self_donor=True, **common)
    if name == "sp-1-0":
        return Algorithm(name, True, "mix", 1.0, 0.0, **common)
    if name == "sp-0-1":
        return Algorithm(name, True, "mix", 0.0, 1.0, **common)
    if name == "mutation":
        return Algorithm(name, True, "mutation", **common)
    if name == "random":
        return Algorithm(name, False, "none", **common)
    if name == "random-sp":
        return Algorithm(name, False, "none", lam, gam, refresh_every_step=True, **common)
    raise ValueError(f"unknown algorithm {name!r}")
