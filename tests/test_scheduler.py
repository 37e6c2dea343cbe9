import numpy as np
import pytest

from pbtnas.search.selection import plan_generation, pool_sizes, rank, should_exploit


@pytest.mark.parametrize("n,parents,children", [(4, 2, 1), (6, 2, 1), (12, 3, 3), (24, 6, 6)])
def test_replacement_counts(n, parents, children):
    assert pool_sizes(n, 0.25) == (parents, children)
    fitness = {i: float(i) for i in range(n)}  # slot n-1 is the best
    plans = plan_generation(fitness, 0.25, np.random.default_rng(0))
    assert len(plans) == children
    replaced = {p.slot for p in plans}
    assert replaced == set(range(children))  # the worst slots
    top = set(range(n - parents, n))
    for p in plans:
        assert p.primary in top and p.donor in top and p.primary != p.donor
        assert fitness[p.primary] > fitness[p.donor]  # the fitter parent is primary


def test_nan_and_inf_rank_last_and_ties_are_seeded():
    fitness = {0: float("nan"), 1: 0.5, 2: float("-inf"), 3: 0.5, 4: 0.9}
    order = rank(fitness, np.random.default_rng(3))
    assert order[0] == 4 and set(order[1:3]) == {1, 3} and set(order[3:]) == {0, 2}
    orders = {tuple(rank(fitness, np.random.default_rng(s))) for s in range(20)}
    assert len(orders) > 1  # ties are not broken by slot number
    assert rank(fitness, np.random.default_rng(5)) == rank(fitness, np.random.default_rng(5))


def test_failed_member_is_replaced():
    fitness = {i: 0.5 + i / 100 for i in range(8)}
    fitness[6] = float("-inf")
    plans = plan_generation(fitness, 0.25, np.random.default_rng(0))
    assert 6 in {p.slot for p in plans}


def test_should_exploit_never_after_last_and_every_k_in_first_half():
    assert [should_exploit(s, 4) for s in range(4)] == [True, True, True, False]
    assert [should_exploit(s, 8, every_first_half=2) for s in range(8)] == [False, True, False, True, True, True, True, False]
