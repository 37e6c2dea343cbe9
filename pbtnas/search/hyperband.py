"""Hyperband arithmetic for ``algorithm: bohb``, counted in member steps (no dependencies).

Optuna's ``HyperbandPruner(min_resource=1, max_resource=steps, reduction_factor=eta)`` runs
``floor(log_eta(steps)) + 1`` brackets of asynchronous successive halving. A trial in bracket ``b``
meets its rungs after ``eta**(b + k)`` trained steps (k = 0, 1, ...) for every such count below
``steps``; at a rung it goes on only if its fitness is in the best ``1/eta`` of the fitnesses
that trials of its bracket had at that rung. A trial that passes every rung trains all ``steps``.

The budget rule (see docs/bohb.md): the run's budget of ``population x steps`` member steps must
cover one whole bracket of the most exploratory kind (bracket 0), as successive halving would run
it: ``eta**R`` trials start, where ``R`` is the number of rungs below ``steps``; at every rung a
``1/eta`` share goes on and the rest stop there; the last trial trains all ``steps``. A rung thus
costs ``(eta - 1) * eta**(R - 1)`` member steps (the trials stopped there times the steps they
trained) and the bracket ``R * (eta - 1) * eta**(R - 1) + steps``.
"""

from __future__ import annotations

import math

from pbtnas.errors import ConfigError


def rungs(steps: int, eta: int, bracket: int = 0) -> list[int]:
    """Trained-step counts at which a trial of ``bracket`` meets a rung (all below ``steps``)."""
    out, k = [], 0
    while eta ** (bracket + k) < steps:
        out.append(eta ** (bracket + k))
        k += 1
    return out


def n_brackets(steps: int, eta: int) -> int:
    """How many brackets Optuna's pruner makes (its own formula, floating point included)."""
    return math.floor(math.log(steps / 1, eta)) + 1


def bracket_cost(steps: int, eta: int) -> int:
    """Member steps of one full successive-halving bracket 0 (see the module docstring)."""
    r = len(rungs(steps, eta))
    return r * (eta - 1) * eta ** (r - 1) + steps if r else steps


def bracket_plan(steps: int, eta: int) -> list[tuple[int, int, int]]:
    """Bracket 0 as successive halving runs it: ``(trained steps, trials stopping there, their
    member steps)`` per rung, then ``(steps, 1, steps)`` for the trial that trains to the end."""
    r = len(rungs(steps, eta))
    plan = [(eta**k, (eta - 1) * eta ** (r - k - 1), (eta - 1) * eta ** (r - 1)) for k in range(r)]
    return plan + [(steps, 1, steps)]


def check_budget(population: int, steps: int, eta: int) -> None:
    """One error line when ``population x steps`` member steps cannot pay for one bracket."""
    if eta < 2:
        raise ConfigError(f"bohb_eta must be at least 2, got {eta}")
    budget, cost = population * steps, bracket_cost(steps, eta)
    if budget < cost:
        plan = bracket_plan(steps, eta)
        first = eta ** len(rungs(steps, eta))
        raise ConfigError(
            f"algorithm bohb: the budget of population x steps = {population} x {steps} = {budget} member steps is "
            f"smaller than one Hyperband bracket ({first} trials, a 1/{eta} share going on at "
            f"{', '.join(str(p[0]) for p in plan[:-1])} trained steps, the last to {steps}: {cost} member steps); "
            f"use population >= {math.ceil(cost / steps)}, fewer steps or a larger bohb_eta"
        )
