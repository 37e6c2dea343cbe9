"""Variation operators: pure functions of parents' genomes and states plus an rng."""

from pbtnas.search.operators.mixing import ChildRecord, choose_donor_genes, mix, shrink_perturb, shrink_perturb_whole, transplant
from pbtnas.search.operators.mutation import BRANCHES, mutate, mutate_architecture, mutate_weights

__all__ = [
    "BRANCHES",
    "ChildRecord",
    "choose_donor_genes",
    "mix",
    "mutate",
    "mutate_architecture",
    "mutate_weights",
    "shrink_perturb",
    "shrink_perturb_whole",
    "transplant",
]
