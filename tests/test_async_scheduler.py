"""Pure decisions of asynchronous PBT-NAS."""

import numpy as np

from pbtnas.search.async_selection import comparable_fitness, plan_replacement


def test_comparable_fitness_uses_same_step_or_latest_before():
    history = {0: {0: 1.0, 1: 2.0, 2: 3.0}, 1: {0: 0.5}, 2: {}, 3: {3: 9.0}}
    assert comparable_fitness(history, 1) == {0: 2.0, 1: 0.5, 3: 9.0}


def test_bottom_member_is_replaced_by_top_parents():
    history = {s: {0: float(s)} for s in range(8)}  # slot 7 best, slot 0 worst
    for seed in range(20):
        plan = plan_replacement(0, 0, history, 8, 0.25, np.random.default_rng(seed))
        assert plan.slot == 0 and {plan.primary, plan.donor} <= {6, 7} and plan.primary == 7


def test_members_not_in_bottom_stay():
    history = {s: {0: float(s)} for s in range(8)}
    assert plan_replacement(5, 0, history, 8, 0.25, np.random.default_rng(0)) is None
    assert plan_replacement(1, 0, history, 8, 0.25, np.random.default_rng(0)) is not None  # bottom 2 of 8


def test_no_decision_before_every_slot_reported():
    history = {s: ({0: float(s)} if s else {}) for s in range(8)}
    assert plan_replacement(1, 0, history, 8, 0.25, np.random.default_rng(0)) is None


def test_failed_member_ranks_last():
    history = {s: {2: 1.0} for s in range(4)}
    history[2] = {2: float("-inf")}
    assert plan_replacement(2, 2, history, 4, 0.25, np.random.default_rng(0)).slot == 2
