"""Variation operators: pure functions of parents' genomes and states plus an rng."""

from .mixing import ChildRecord, choose_donor_genes, mix, shrink_perturb, shrink_perturb_whole, transplant
from .mutation import BRANCHES, mutate, mutate_architecture, mutate_weights

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
