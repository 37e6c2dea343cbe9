import json
from collections import Counter

import numpy as np
import pytest

from pbtnas.errors import GenomeError
from pbtnas.search.space import Gene, SearchSpace


def space():
    return SearchSpace([Gene("a", ("x", "y", "z")), Gene("b", (0, 1, 2, 3, 4)), Gene("c", (0.0, 0.1), False)])


@pytest.mark.parametrize("n", [4, 6, 12, 24, 25])
def test_stratified_counts_every_option_at_least_floor(n):
    s = space()
    pop = s.stratified_population(n, np.random.default_rng(1))
    assert len(pop) == n
    for gene in s:
        counts = Counter(g[gene.name] for g in pop)
        floor = n // len(gene.options)
        assert all(counts[o] >= floor for o in gene.options), (gene.name, counts)
        assert sum(counts.values()) == n


def test_stratified_is_seeded_and_member_order_shuffled():
    s = space()
    a = s.stratified_population(12, np.random.default_rng(7))
    b = s.stratified_population(12, np.random.default_rng(7))
    c = s.stratified_population(12, np.random.default_rng(8))
    assert a == b and a != c
    # the pool is shuffled: member order is not the option order
    assert [g["a"] for g in a] != ["x", "y", "z"] * 4


def test_validate_names_the_bad_gene():
    s = space()
    with pytest.raises(GenomeError, match="gene 'b' has option 9"):
        s.validate({"a": "x", "b": 9, "c": 0.0})
    with pytest.raises(GenomeError, match="lacks"):
        s.validate({"a": "x"})
    with pytest.raises(GenomeError, match="unknown gene"):
        s.validate({"a": "x", "b": 1, "c": 0.0, "d": 1})


def test_json_round_trip_keeps_types_and_order():
    s = space()
    g = {"c": 0.1, "a": "z", "b": 3}
    text = s.to_json(g)
    assert list(json.loads(text)) == ["a", "b", "c"]
    assert s.from_json(text) == {"a": "z", "b": 3, "c": 0.1}
    with pytest.raises(GenomeError, match="not valid JSON"):
        s.from_json("{oops")


def test_duplicate_gene_rejected():
    with pytest.raises(ValueError):
        SearchSpace([Gene("a", (1, 2)), Gene("a", (1, 2))])
