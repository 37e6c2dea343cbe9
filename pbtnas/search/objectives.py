"""Several objectives at once (docs/multi-objective.md): parsing, ranking, the Pareto front and
its hypervolume. Pure functions over plain numbers; no torch.

A run's ``objectives`` are names with a direction (``fitness``, ``params:min``); ``constraints``
bound some of them (``params<=50000``). Members are ranked as MO-PBT ranks them: feasible members
first, by non-dominated sorting, ties within a front broken by crowding distance (the more isolated
member first) and then by a seeded permutation; infeasible members after them, by their total
violation. Non-dominated sorting and hypervolume come from ``moocore`` (the ``mo`` extra).
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass
from typing import Callable

import numpy as np

from pbtnas.errors import ConfigError

#: costs the engine measures itself on a member's network; any other name (besides ``fitness``)
#: is a metric the task's ``evaluate`` returns
BUILTIN_COSTS = ("params", "flops", "latency_ms")
#: built-in costs that need a forward pass, hence the task's ``example_input``
NEEDS_INPUT = ("flops", "latency_ms")
DIRECTIONS = ("max", "min")
_OPS: dict[str, Callable[[float, float], bool]] = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_CONSTRAINT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.\-]*)\s*(<=|>=|<|>)\s*(\S+)\s*$")


@dataclass(frozen=True)
class Objective:
    """One objective: a name (``fitness``, a built-in cost, a metric of ``evaluate``) and whether
    larger (``max``) or smaller (``min``) values are better."""

    name: str
    direction: str = "max"

    def minimised(self, value: float) -> float:
        """The value on the minimising scale ranking works on (a maximised objective negated)."""
        return -value if self.direction == "max" else value

    def to_dict(self) -> dict:
        return {"name": self.name, "direction": self.direction}


@dataclass(frozen=True)
class Constraint:
    """A bound on one named value, e.g. ``params<=50000``."""

    name: str
    op: str
    bound: float

    def violation(self, values: dict[str, float]) -> float:
        """How far ``values`` are from satisfying the bound (0.0 when satisfied; inf when the
        value is missing or not finite)."""
        value = values.get(self.name)
        if value is None or not math.isfinite(value):
            return math.inf
        if _OPS[self.op](value, self.bound):
            return 0.0
        # a strict bound missed by equality still counts as violated, by the smallest amount
        return max(abs(value - self.bound), math.ulp(self.bound) if self.bound else 5e-324)

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.bound:g}"


def parse_objectives(entries: list) -> list[Objective]:
    """``["fitness", "params:min"]`` -> objectives; one :class:`ConfigError` line for a bad entry."""
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"objectives must be a non-empty list such as ['fitness', 'params:min'], got {entries!r}")
    out: list[Objective] = []
    for entry in entries:
        if not isinstance(entry, str):
            raise ConfigError(f"objectives: each entry is NAME or NAME:max or NAME:min, got {entry!r}")
        name, colon, direction = entry.strip().partition(":")
        direction = direction.strip() if colon else "max"
        name = name.strip()
        if not _NAME.match(name) or direction not in DIRECTIONS:
            raise ConfigError(f"objectives: {entry!r} is not NAME, NAME:max or NAME:min")
        for seen in out:
            if seen.name == name:
                if seen.direction != direction:
                    raise ConfigError(f"objectives: {name!r} is given both to maximise and to minimise")
                raise ConfigError(f"objectives: {name!r} is given twice")
        out.append(Objective(name, direction))
    return out


def parse_constraints(entries: list) -> list[Constraint]:
    """``["params<=50000"]`` -> constraints; one :class:`ConfigError` line for a bad entry."""
    if not isinstance(entries, list):
        raise ConfigError(f"constraints must be a list such as ['params<=50000'], got {entries!r}")
    out = []
    for entry in entries:
        match = _CONSTRAINT.match(entry) if isinstance(entry, str) else None
        bound = _number(match.group(3)) if match else None
        if match is None or bound is None:
            raise ConfigError(f"constraints: {entry!r} is not NAME<=NUMBER, NAME>=NUMBER, NAME<NUMBER or NAME>NUMBER")
        out.append(Constraint(match.group(1), match.group(2), bound))
    return out


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def is_multi(objectives: list[Objective], constraints: list[Constraint]) -> bool:
    """Whether a run needs this module at all: more than one objective, or any constraint.
    (``objectives: [fitness]`` without constraints is the single-objective run, unchanged.)"""
    return len(objectives) > 1 or bool(constraints) or objectives[0].name != "fitness" or objectives[0].direction != "max"


def value_names(objectives: list[Objective], constraints: list[Constraint]) -> list[str]:
    """Every value a member must report: ``fitness`` first, then objectives and constrained names."""
    names = ["fitness"]
    for name in [o.name for o in objectives] + [c.name for c in constraints]:
        if name not in names:
            names.append(name)
    return names


def check_names(names: list[str], metrics: tuple[str, ...], has_input: bool, task: str) -> None:
    """Refuse (one line) a name that is neither the fitness, a built-in cost nor a metric the
    task declares, and a forward-pass cost on a task without ``example_input``."""
    known = ("fitness",) + BUILTIN_COSTS + tuple(metrics)
    for name in names:
        if name not in known:
            declared = f"; {task} declares the metrics {list(metrics)}" if metrics else f"; {task} declares no metrics of its own (metric_names)"
            raise ConfigError(f"objective or constraint {name!r} is unknown: use fitness, {', '.join(BUILTIN_COSTS)}{declared}")
        if name in NEEDS_INPUT and not has_input:
            raise ConfigError(f"objective or constraint {name!r} needs a forward pass, and {task} has no example_input(batch)")


def _require_moocore():
    try:
        import moocore
    except ImportError:
        raise ConfigError("several objectives or constraints need moocore: pip install 'pbtnas[mo]'") from None
    return moocore


def require_library() -> None:
    """One error line, before any run directory exists, when the library is not installed."""
    _require_moocore()


def _finite(values: dict[str, float], objectives: list[Objective]) -> bool:
    return all(isinstance(values.get(o.name), (int, float)) and math.isfinite(values[o.name]) for o in objectives)


def _matrix(values: list[dict[str, float]], objectives: list[Objective]) -> np.ndarray:
    return np.array([[o.minimised(float(v[o.name])) for o in objectives] for v in values], dtype=float).reshape(len(values), len(objectives))


def violation(values: dict[str, float], constraints: list[Constraint]) -> float:
    """The total violation of ``constraints`` (0.0: feasible)."""
    return float(sum(c.violation(values) for c in constraints))


def crowding_distance(points: np.ndarray) -> np.ndarray:
    """NSGA-II's crowding distance of the points of one front (rows; minimised columns): per
    objective the normalised gap between each point's two neighbours, the extremes infinite."""
    n, m = points.shape
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(m):
        order = np.argsort(points[:, j], kind="stable")
        column = points[order, j]
        span = column[-1] - column[0]
        distance[order[0]] = distance[order[-1]] = np.inf
        if span > 0:
            distance[order[1:-1]] += (column[2:] - column[:-2]) / span
    return distance


def rank(values: list[dict[str, float]], objectives: list[Objective], constraints: list[Constraint], rng: np.random.Generator) -> list[int]:
    """Indices of ``values`` best first: feasible members by non-dominated front, within a front
    by crowding distance (larger first); then infeasible ones by total violation; members with a
    missing or non-finite objective last. Remaining ties follow a seeded random permutation."""
    tiebreak = rng.permutation(len(values))
    feasible, infeasible, broken = [], [], []
    for i, v in enumerate(values):
        if not _finite(v, objectives):
            broken.append(i)
        elif violation(v, constraints) > 0:
            infeasible.append(i)
        else:
            feasible.append(i)
    key: dict[int, tuple] = {}
    if feasible:
        points = _matrix([values[i] for i in feasible], objectives)
        fronts = _require_moocore().pareto_rank(points)
        crowding = np.zeros(len(feasible))
        for front in np.unique(fronts):
            where = np.flatnonzero(fronts == front)
            crowding[where] = crowding_distance(points[where])
        for k, i in enumerate(feasible):
            key[i] = (0, int(fronts[k]), -float(crowding[k]), int(tiebreak[i]))
    for i in infeasible:
        key[i] = (1, violation(values[i], constraints), 0.0, int(tiebreak[i]))
    for i in broken:
        key[i] = (2, 0, 0.0, int(tiebreak[i]))
    return sorted(key, key=lambda i: key[i])


def dominates(a: dict[str, float], b: dict[str, float], objectives: list[Objective], constraints: list[Constraint] | None = None) -> bool:
    """Constrained domination (Deb): a feasible member dominates an infeasible one, of two
    infeasible ones the less violating dominates, and of two feasible ones Pareto domination."""
    va, vb = violation(a, constraints or []), violation(b, constraints or [])
    if va > 0 or vb > 0:
        return va < vb
    pa = [o.minimised(float(a[o.name])) for o in objectives]
    pb = [o.minimised(float(b[o.name])) for o in objectives]
    return all(x <= y for x, y in zip(pa, pb)) and any(x < y for x, y in zip(pa, pb))


def pareto_front(values: list[dict[str, float]], objectives: list[Objective]) -> list[int]:
    """Indices of the non-dominated members among those with finite objective values."""
    finite = [i for i, v in enumerate(values) if _finite(v, objectives)]
    if not finite:
        return []
    mask = _require_moocore().is_nondominated(_matrix([values[i] for i in finite], objectives))
    return [i for i, keep in zip(finite, mask) if keep]


def hypervolume(values: list[dict[str, float]], objectives: list[Objective], reference: dict[str, float]) -> float:
    """The volume the members' finite points dominate up to ``reference`` (0.0 when none does)."""
    points = [v for v in values if _finite(v, objectives)]
    if not points:
        return 0.0
    ref = np.array([o.minimised(float(reference[o.name])) for o in objectives])
    if not np.all(np.isfinite(ref)):
        return 0.0
    matrix = _matrix(points, objectives)
    matrix = matrix[np.all(matrix < ref, axis=1)]  # points beyond the reference add nothing
    if len(matrix) == 0:
        return 0.0
    return float(_require_moocore().hypervolume(matrix, ref=ref))


def reference_point(values: list[dict[str, float]], objectives: list[Objective], widen: float = 0.1) -> dict[str, float]:
    """The hypervolume's reference point: per objective the worst finite value among ``values``
    (the run's first step), moved a further ``widen`` of the values' range (of the value's size
    when they are all equal; 1 when that is 0) in the worse direction."""
    out = {}
    for o in objectives:
        seen = [float(v[o.name]) for v in values if isinstance(v.get(o.name), (int, float)) and math.isfinite(v[o.name])]
        if not seen:
            out[o.name] = math.inf if o.direction == "min" else -math.inf
            continue
        worst = min(seen) if o.direction == "max" else max(seen)
        span = (max(seen) - min(seen)) or abs(worst) or 1.0
        out[o.name] = worst - widen * span if o.direction == "max" else worst + widen * span
    return out


#: final selections that choose by the fitness alone; a run with several objectives delivers the
#: best feasible front member by the first objective instead
SINGLE_OBJECTIVE_SELECTIONS = ("best-last", "top-k-reevaluated")


def check_objectives(objectives: list, constraints: list, final_selection: str = "") -> None:
    """What the run config checks (one :class:`ConfigError` line): the entries parse, and a
    run with several objectives or constraints names no final selection that needs one objective
    and has the library installed."""
    parsed, bounds = parse_objectives(objectives), parse_constraints(constraints)
    if not is_multi(parsed, bounds):
        return
    if final_selection in SINGLE_OBJECTIVE_SELECTIONS:
        raise ConfigError(
            f"final_selection {final_selection} chooses by the fitness alone, which needs one objective: "
            "leave it empty (or best-ever) with several objectives or constraints"
        )
    require_library()


def slot_ranker(objectives: list[Objective], constraints: list[Constraint]):
    """A :data:`pbtnas.search.selection.Ranker` over each slot's values (dicts by name)."""

    def ranker(scores: dict[int, dict[str, float]], rng: np.random.Generator) -> list[int]:
        slots = sorted(scores)
        return [slots[i] for i in rank([scores[s] or {} for s in slots], objectives, constraints, rng)]

    return ranker
