"""Several objectives, the pure part (pbtnas.search.objectives): parsing and every bad entry,
ranking on hand-made points, the front and its hypervolume, and selection through the ranker."""

import math

import numpy as np
import pytest

from pbtnas.config import config_from_dict
from pbtnas.errors import ConfigError
from pbtnas.search.async_selection import plan_replacement
from pbtnas.search.objectives import (
    Constraint,
    Objective,
    crowding_distance,
    hypervolume,
    is_multi,
    pareto_front,
    parse_constraints,
    parse_objectives,
    rank,
    reference_point,
    slot_ranker,
)
from pbtnas.search.selection import plan_generation

pytest.importorskip("moocore")

ACC_PARAMS = [Objective("fitness", "max"), Objective("params", "min")]


def test_entries_parse_with_max_as_the_default_direction():
    parsed = parse_objectives(["fitness", "params:min", "recall:max"])
    assert parsed == [Objective("fitness", "max"), Objective("params", "min"), Objective("recall", "max")]
    assert parse_constraints(["params<=50000", "latency_ms < 2.5", "recall>=0.9"]) == [
        Constraint("params", "<=", 50000.0),
        Constraint("latency_ms", "<", 2.5),
        Constraint("recall", ">=", 0.9),
    ]


def test_only_fitness_without_constraints_is_the_single_objective_run():
    assert not is_multi(parse_objectives(["fitness"]), [])
    assert is_multi(parse_objectives(["fitness"]), parse_constraints(["params<=10"]))
    assert is_multi(parse_objectives(["fitness", "params:min"]), [])


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("objectives", ["fitness", "fitness"], "objectives: 'fitness' is given twice"),
        ("objectives", ["params:min", "params:max"], "'params' is given both to maximise and to minimise"),
        ("objectives", ["params:smallest"], "is not NAME, NAME:max or NAME:min"),
        ("objectives", [], "objectives must be a non-empty list"),
        ("constraints", ["params=<5"], "constraints: 'params=<5' is not NAME<=NUMBER"),
        ("constraints", ["params<=lots"], "is not NAME<=NUMBER"),
        ("constraints", ["params<=nan"], "is not NAME<=NUMBER"),
    ],
)
def test_a_bad_entry_is_one_config_error(key, value, message):
    with pytest.raises(ConfigError) as err:
        config_from_dict({"task": "simulated", key: value})
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("selection", ["best-last", "top-k-reevaluated"])
def test_a_final_selection_that_needs_one_objective_is_refused_by_name(selection):
    with pytest.raises(ConfigError, match=f"final_selection {selection} chooses by the fitness alone"):
        config_from_dict({"task": "simulated", "objectives": ["fitness", "params:min"], "final_selection": selection})
    config_from_dict({"task": "simulated", "final_selection": selection})  # one objective: as before


def test_violation_is_zero_when_satisfied_and_the_distance_otherwise():
    c = Constraint("params", "<=", 100.0)
    assert c.violation({"params": 100.0}) == 0.0 and c.violation({"params": 130.0}) == 30.0
    assert Constraint("params", "<", 100.0).violation({"params": 100.0}) > 0  # strict: equality violates
    assert c.violation({}) == math.inf


def test_a_dominated_member_ranks_below_the_front():
    values = [{"fitness": 0.9, "params": 100}, {"fitness": 0.8, "params": 200}, {"fitness": 0.7, "params": 50}]
    order = rank(values, ACC_PARAMS, [], np.random.default_rng(0))
    assert order[-1] == 1  # worse on both counts than member 0
    assert pareto_front(values, ACC_PARAMS) == [0, 2]


def test_crowding_distance_breaks_ties_within_a_front():
    # all four non-dominated; the two extremes are infinitely crowded-apart, of the middle two the
    # one with more room around it ranks first whatever the seed
    values = [{"fitness": 0.0, "params": 0}, {"fitness": 0.1, "params": 10}, {"fitness": 0.5, "params": 50}, {"fitness": 1.0, "params": 100}]
    points = np.array([[-v["fitness"], v["params"]] for v in values])
    assert np.isinf(crowding_distance(points)[[0, 3]]).all()
    for seed in range(5):
        order = rank(values, ACC_PARAMS, [], np.random.default_rng(seed))
        assert set(order[:2]) == {0, 3} and order[2:] == [2, 1]


def test_equal_members_are_ordered_by_the_seeded_draw():
    values = [{"fitness": 0.5, "params": 10}] * 4
    orders = {tuple(rank(values, ACC_PARAMS, [], np.random.default_rng(seed))) for seed in range(8)}
    assert len(orders) > 1
    assert rank(values, ACC_PARAMS, [], np.random.default_rng(3)) == rank(values, ACC_PARAMS, [], np.random.default_rng(3))


def test_infeasible_members_rank_below_feasible_ones_by_violation_and_failed_ones_last():
    limit = [Constraint("params", "<=", 100.0)]
    values = [
        {"fitness": 0.99, "params": 500},  # best fitness, far over the limit
        {"fitness": 0.10, "params": 90},  # feasible, poor
        {"fitness": 0.95, "params": 150},  # over the limit by less
        {"fitness": float("-inf"), "params": 10},  # a failed step
        None or {"fitness": 0.5},  # no params reported: cannot rank on it
    ]
    order = rank(values, ACC_PARAMS, limit, np.random.default_rng(0))
    assert order[:3] == [1, 2, 0] and set(order[3:]) == {3, 4}


def test_hypervolume_of_two_points_against_a_reference():
    values = [{"fitness": 1.0, "params": 1.0}, {"fitness": 0.5, "params": 0.0}]
    # minimising (-fitness, params) with reference (0, 2): rectangles 1x1 and 0.5x2 overlap in 0.5x1
    assert hypervolume(values, ACC_PARAMS, {"fitness": 0.0, "params": 2.0}) == pytest.approx(1.0 + 1.0 - 0.5)
    assert hypervolume(values, ACC_PARAMS, {"fitness": 2.0, "params": 2.0}) == 0.0  # nothing beats the reference


def test_the_reference_point_is_the_first_steps_worst_value_widened_by_a_tenth_of_the_range():
    ref = reference_point([{"fitness": 0.2, "params": 100}, {"fitness": 0.6, "params": 300}], ACC_PARAMS)
    assert ref == pytest.approx({"fitness": 0.2 - 0.04, "params": 300 + 20})


def test_the_generation_plan_replaces_the_dominated_members_with_children_of_the_front():
    scores = {
        0: {"fitness": 0.9, "params": 100},
        1: {"fitness": 0.2, "params": 400},  # dominated by 0, 2 and 3
        2: {"fitness": 0.5, "params": 20},
        3: {"fitness": 0.7, "params": 60},
        4: {"fitness": 0.3, "params": 300},  # dominated by 0, 2 and 3
        5: {"fitness": 0.8, "params": 90},
        6: {"fitness": 0.1, "params": 10},
        7: {"fitness": 0.6, "params": 50},
    }
    plans = plan_generation(scores, 0.25, np.random.default_rng(1), slot_ranker(ACC_PARAMS, []))
    assert sorted(p.slot for p in plans) == [1, 4]
    assert all(p.primary not in (1, 4) and p.donor not in (1, 4) for p in plans)


def test_async_replacement_uses_the_ranker_over_values():
    history = {s: {0: {"fitness": f, "params": p}} for s, (f, p) in enumerate([(0.9, 10), (0.8, 20), (0.7, 30), (0.1, 40)])}
    ranker = slot_ranker(ACC_PARAMS, [])
    plan = plan_replacement(3, 0, history, 4, 0.25, np.random.default_rng(0), ranker)
    assert plan is not None and plan.slot == 3 and {plan.primary, plan.donor} <= {0, 1}
    assert plan_replacement(0, 0, history, 4, 0.25, np.random.default_rng(0), ranker) is None
