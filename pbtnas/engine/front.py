"""What a run with several objectives keeps for its user: every non-dominated member snapshot seen
(its checkpoint copied to ``front/``, out of reach of the step folders' pruning), the hypervolume
of that front after every step, and the reference point it is measured from
(docs/multi-objective.md).

Domination is constrained domination: once any feasible snapshot was seen the front holds only
feasible ones; before that, the least violating. The reference point is fixed when the first step
is done: per objective the worst value of that step's members, widened by 10% of their range.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from pbtnas.rundir.atomic import atomic_write_bytes
from pbtnas.rundir.store import RunStore
from pbtnas.search.objectives import Constraint, Objective, dominates, hypervolume, reference_point, violation


@dataclass
class FrontEntry:
    """One non-dominated snapshot: a member at a step, its values and its kept checkpoint."""

    uid: int
    slot: int
    step: int
    genome: dict
    objectives: dict
    feasible: bool
    checkpoint: str  # relative to the run directory

    def to_dict(self) -> dict:
        return asdict(self)


class Front:
    """The front kept during a run; its state goes into the manifest (``pareto``)."""

    def __init__(self, store: RunStore, objectives: list[Objective], constraints: list[Constraint]):
        self.store, self.objectives, self.constraints = store, objectives, constraints
        self.entries: list[FrontEntry] = []
        self.hypervolume: list[dict] = []  # [{"step", "value"}]
        self.reference: dict[str, float] | None = None
        self.first_step: list[dict] = []  # values of the first step's members, until the reference is fixed

    def offer(self, uid: int, slot: int, step: int, genome: dict, values: dict, checkpoint: Path) -> bool:
        """Add the snapshot if nothing kept dominates it (dropping what it dominates); copy its
        checkpoint. True when it was added."""
        if step == 0 and self.reference is None:
            self.first_step.append(dict(values))
        if any(not _finite(values.get(o.name)) for o in self.objectives):
            return False
        if any(self._covers(e.objectives, values) for e in self.entries):
            return False
        rel = f"front/uid{uid:05d}_step{step:04d}.pt"
        target = self.store.absolute(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(target, Path(checkpoint).read_bytes())
        kept = [e for e in self.entries if not dominates(values, e.objectives, self.objectives, self.constraints)]
        for gone in self.entries:
            if gone not in kept and gone.checkpoint != rel:
                self.store.absolute(gone.checkpoint).unlink(missing_ok=True)
        feasible = violation(values, self.constraints) == 0
        self.entries = [e for e in kept if e.checkpoint != rel] + [FrontEntry(uid, slot, step, genome, dict(values), feasible, rel)]
        return True

    def _covers(self, kept: dict, values: dict) -> bool:
        """Whether a kept snapshot dominates ``values`` or equals them on every objective (the
        earlier one stays: one point, one checkpoint)."""
        return dominates(kept, values, self.objectives, self.constraints) or all(kept.get(o.name) == values.get(o.name) for o in self.objectives)

    def step_done(self, step: int) -> None:
        """Fix the reference point after the first step; record the hypervolume after ``step``."""
        if self.reference is None:
            self.reference = reference_point(self.first_step, self.objectives)
            self.first_step = []
        feasible = [e.objectives for e in self.entries if e.feasible]
        value = hypervolume(feasible, self.objectives, self.reference)
        self.hypervolume = [h for h in self.hypervolume if h["step"] < step] + [{"step": step, "value": value}]

    def delete_strays(self) -> None:
        """Remove checkpoints in ``front/`` the front does not hold (left by work after the last
        commit that a resume redid)."""
        folder = self.store.root / "front"
        if not folder.is_dir():
            return
        kept = {Path(e.checkpoint).name for e in self.entries}
        for path in folder.glob("uid*.pt"):
            if path.name not in kept:
                path.unlink(missing_ok=True)

    # -- the manifest -----------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "entries": [e.to_dict() for e in self.entries],
            "hypervolume": list(self.hypervolume),
            "reference": self.reference,
            "first_step": list(self.first_step),
        }

    def load(self, data: dict | None) -> None:
        data = data or {}
        self.entries = [FrontEntry(**e) for e in data.get("entries", [])]
        self.hypervolume = list(data.get("hypervolume", []))
        self.reference = data.get("reference")
        self.first_step = list(data.get("first_step", []))


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and value == value and abs(value) != float("inf")
