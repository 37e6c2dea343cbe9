"""The algorithms a run can use, in one registry: their names, what each says it is, the operator
object that changes the population between steps, and the schedule an algorithm brings with it.

Every algorithm shares the population, initialisation, budget and selection; they differ only in
their :class:`Operator`: whether a replaced slot gets a child and how it is made (mixing, mixing
with the primary parent as its own donor, mutation), or whether no member is ever replaced (random
search), perhaps with every whole network shrink-perturbed between steps (random-sp). The
schedules ask the operator (:meth:`Operator.exploits_after`, :meth:`Operator.refreshes_after`,
:meth:`Operator.make_child`, :meth:`Operator.refresh`) and never test an algorithm's name.

Adding an algorithm: an :class:`Operator` subclass (or an existing one) and one line in
:data:`ALGORITHMS`; the config's and the CLI's choices, ``pbtnas compare --algorithms`` and the
schedule registry (:mod:`pbtnas.search.schedules`) read it from there.

The config and the CLI read this module before any run, so it imports neither torch nor the
operator functions at load time: each operator imports the function it calls when it first runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pbtnas.search.selection import should_exploit

if TYPE_CHECKING:
    import numpy as np

    from pbtnas.search.operators import ChildRecord
    from pbtnas.search.space import Genome
    from pbtnas.search.state import MemberState
    from pbtnas.search.task_protocol import TaskProtocol


class AlgorithmSettings(Protocol):
    """The run config's keys an algorithm is built from (:class:`~pbtnas.config.RunConfig` has
    them); declared here so that the search layer does not import the config above it."""

    algorithm: str
    p_donor: float
    donor_moments: bool
    sp_buffers: str
    sp_lambda: float
    sp_gamma: float


@dataclass(frozen=True)
class Operator:
    """What an algorithm does to the population between steps; this base does nothing (random
    search: no member is ever replaced nor changed). Pure: it reads members, returns new ones, and
    leaves I/O, seeding and journaling to the runner (:meth:`pbtnas.engine.runner.Runner.make_child`)."""

    #: whether it ever makes a child (the report says why a run has none)
    makes_children: ClassVar[bool] = False

    @classmethod
    def from_settings(cls, settings: AlgorithmSettings, **fixed: Any) -> Operator:
        """The operator with the run's settings; ``fixed``: values an algorithm pins (registry)."""
        return cls()

    def exploits_after(self, step: int, steps: int, exploit_every_first_half: int) -> bool:
        """Whether the bottom members are replaced by children after ``step`` (0-based) of ``steps``."""
        return False

    def refreshes_after(self, step: int) -> bool:
        """Whether every member is refreshed (:meth:`refresh`) after ``step`` when none is replaced."""
        return False

    def make_child(
        self, task: TaskProtocol, primary: tuple[Genome, MemberState], donor: tuple[Genome, MemberState], rng: np.random.Generator
    ) -> tuple[Genome, MemberState, ChildRecord]:
        """The child of ``primary`` (the fitter parent) and ``donor``, and the record the journal
        keeps of it (the ``child_created`` event's operator fields)."""
        raise RuntimeError(f"{type(self).__name__} makes no children")

    def refresh(self, task: TaskProtocol, genome: Genome, state: MemberState, rng: np.random.Generator) -> tuple[MemberState, ChildRecord]:
        """A member's state changed in place between steps (same uid), and its journal record."""
        raise RuntimeError(f"{type(self).__name__} refreshes no member")


@dataclass(frozen=True)
class ChildOperator(Operator):
    """Base of the operators that replace the bottom members by children, on the steps
    ``exploit_every_first_half`` leaves (docs/algorithm.md §2)."""

    makes_children: ClassVar[bool] = True

    def exploits_after(self, step: int, steps: int, exploit_every_first_half: int) -> bool:
        return should_exploit(step, steps, exploit_every_first_half)


@dataclass(frozen=True)
class Mixing(ChildOperator):
    """PBT-NAS: architecture mixing with shrink-perturb weight inheritance (``lam``, ``gam``)."""

    p_donor: float = 0.25
    lam: float = 0.4
    gam: float = 0.1
    donor_moments: bool = False
    sp_buffers: str = "all"  # "parameters": buffers of transplanted layers are copied, not perturbed

    @classmethod
    def from_settings(cls, settings: AlgorithmSettings, **fixed: Any) -> Operator:
        values: dict[str, Any] = {
            "p_donor": settings.p_donor,
            "lam": settings.sp_lambda,
            "gam": settings.sp_gamma,
            "donor_moments": settings.donor_moments,
            "sp_buffers": settings.sp_buffers,
        }
        return cls(**{**values, **fixed})

    def make_child(self, task, primary, donor, rng):
        from pbtnas.search.operators.mixing import mix

        return mix(
            task,
            primary,
            donor,
            rng,
            p_donor=self.p_donor,
            lam=self.lam,
            gam=self.gam,
            donor_moments=self.donor_moments,
            sp_buffers=self.sp_buffers,
        )


@dataclass(frozen=True)
class SelfMixing(Mixing):
    """The no-mixing ablation: mixing whose donor is the primary parent itself, so marked layers
    are shrink-perturbed towards themselves; the record names one parent and no donor."""

    def make_child(self, task, primary, donor, rng):
        genome, state, record = super().make_child(task, primary, primary, rng)
        # nothing came from a second parent: say what was done instead
        record.details["genes_perturbed"] = record.genes_from_donor
        record.genes_from_donor = []
        record.details["self_donor"] = True
        record.single_parent = True
        return genome, state, record


@dataclass(frozen=True)
class Mutation(ChildOperator):
    """The SEARL-like baseline: a mutated copy of the primary parent (weights or one gene)."""

    def make_child(self, task, primary, donor, rng):
        from pbtnas.search.operators.mutation import mutate

        return mutate(task, primary, rng)


@dataclass(frozen=True)
class WholeShrinkPerturb(Operator):
    """The random-sp ablation: no child ever; every whole network is shrink-perturbed (``lam``,
    ``gam``) after every step but the last."""

    lam: float = 0.4
    gam: float = 0.1

    @classmethod
    def from_settings(cls, settings: AlgorithmSettings, **fixed: Any) -> Operator:
        return cls(**{"lam": settings.sp_lambda, "gam": settings.sp_gamma, **fixed})

    def refreshes_after(self, step: int) -> bool:
        return True

    def refresh(self, task, genome, state, rng):
        from pbtnas.search.operators.mixing import shrink_perturb_whole

        return shrink_perturb_whole(task, genome, state, rng, self.lam, self.gam)


@dataclass(frozen=True)
class Algorithm:
    """One algorithm as the registry lists it."""

    #: one line, shown by ``pbtnas run --help``, the config's docs and ``pbtnas compare``'s errors
    description: str
    #: the operator class, built from the run's settings by its ``from_settings``
    operator: type[Operator]
    #: settings the algorithm pins whatever the config says (the sp-* ablations' lam and gam)
    fixed: Mapping[str, Any] = field(default_factory=dict)
    #: the schedule (a name in :data:`pbtnas.search.schedules.SCHEDULES`) it brings whatever the
    #: config's mode; None: the mode chooses
    schedule: str | None = None

    def build(self, settings: AlgorithmSettings) -> Operator:
        """The operator a run with ``settings`` uses."""
        return self.operator.from_settings(settings, **self.fixed)


#: adding an algorithm: its operator (a class above, or a new one) and one line here
ALGORITHMS: dict[str, Algorithm] = {
    "pbtnas": Algorithm("PBT-NAS: mixing with shrink-perturb (paper default)", Mixing),
    "random": Algorithm("random search: stratified architectures, no exploitation", Operator),
    "mutation": Algorithm("SEARL-like mutation baseline", Mutation),
    "no-mixing": Algorithm("ablation: donor := primary parent (layers shrink-perturbed towards themselves)", SelfMixing),
    "sp-1-0": Algorithm("ablation: shrink-perturb (1, 0), i.e. exact copy of donor layers", Mixing, {"lam": 1.0, "gam": 0.0}),
    "sp-0-1": Algorithm("ablation: shrink-perturb (0, 1), i.e. re-initialised donor layers", Mixing, {"lam": 0.0, "gam": 1.0}),
    "random-sp": Algorithm("ablation: random search with shrink-perturb of every whole network each step", WholeShrinkPerturb),
    "bohb": Algorithm(
        "BOHB baseline: TPE sampling with Hyperband pruning (Optuna), trials trained from scratch, same budget",
        Operator,
        schedule="bohb",
    ),
    "nsga2": Algorithm(
        "NSGA-II baseline (Optuna's NSGAIISampler): trials trained from scratch for nsga2_trial_steps each, same budget",
        Operator,
        schedule="nsga2",
    ),
}


def build_operator(settings: AlgorithmSettings) -> Operator:
    """The operator of the algorithm ``settings.algorithm`` names, built from ``settings``."""
    try:
        algorithm = ALGORITHMS[settings.algorithm]
    except KeyError:
        raise ValueError(f"unknown algorithm {settings.algorithm!r}") from None
    return algorithm.build(settings)


__all__ = [
    "ALGORITHMS",
    "Algorithm",
    "AlgorithmSettings",
    "ChildOperator",
    "Mixing",
    "Mutation",
    "Operator",
    "SelfMixing",
    "WholeShrinkPerturb",
    "build_operator",
]
