"""PBT-NAS's variation operator: architecture mixing with shrink-perturb weight inheritance.

Pure functions of (parents' genomes and states, rng); they return the child and a record of
what they did, and do no I/O. See SPEC §2.5.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..space import Genome, SearchSpace
from ..state import MemberState, keys_under
from ..task import Task


@dataclass
class ChildRecord:
    """What an operator did to make one child (journaled as the ``child_created`` event)."""

    operator: str
    primary: int | None = None
    donor: int | None = None
    genes_from_donor: list[str] = field(default_factory=list)
    seed: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "operator": self.operator,
            "primary": self.primary,
            "donor": self.donor,
            "genes_from_donor": list(self.genes_from_donor),
            "seed": self.seed,
            **self.details,
        }


def choose_donor_genes(space: SearchSpace, rng: np.random.Generator, p_donor: float) -> list[str]:
    """Mark each gene independently with probability ``p_donor`` (even where parents agree)."""
    draws = rng.random(len(space))
    return [gene.name for gene, u in zip(space.genes, draws) if u < p_donor]


def shrink_perturb(donor: torch.Tensor, fresh: torch.Tensor, lam: float, gam: float) -> torch.Tensor:
    """``lam * donor + gam * fresh`` for floating tensors; integer tensors are copied unchanged."""
    if not torch.is_floating_point(donor):
        return donor.clone()
    if donor.shape != fresh.shape:
        raise ValueError(f"shape mismatch in shrink-perturb: donor {tuple(donor.shape)} vs fresh {tuple(fresh.shape)}")
    if lam == 1.0 and gam == 0.0:  # exact copy, bit for bit
        return donor.clone()
    return (lam * donor + gam * fresh.to(donor.dtype)).to(donor.dtype)


def transplant(
    task: Task,
    child: MemberState,
    donor: MemberState,
    fresh: MemberState | None,
    genes: list[str],
    lam: float,
    gam: float,
    donor_moments: bool = False,
) -> list[str]:
    """Replace, in ``child`` (edited in place), the layers of ``genes`` by the donor's.

    For every model key a gene owns: the child's tensors under the gene's module prefixes are
    deleted and the donor's inserted, shrink-perturbed with ``fresh``. Shadow models (EMA,
    target) take the donor's tensors unchanged. Optimizer entries of those parameters are
    dropped (moments reset) or, with ``donor_moments``, taken from the donor. Returns the state
    keys that were transplanted, as ``"model:tensor"`` strings.
    """
    moved: list[str] = []
    for gene in genes:
        if not task.space[gene].owns_weights:
            continue
        owned = task.gene_modules(gene)
        for model_key, prefixes in owned.items():
            shadows = [s for s, src in task.shadow_models.items() if src == model_key]
            for key in [model_key] + shadows:
                if key not in child.models:
                    continue
                is_shadow = key != model_key
                target = child.models[key]
                for name in keys_under(list(target), prefixes):
                    del target[name]
                source = donor.models.get(key, {})
                for name in keys_under(list(source), prefixes):
                    if is_shadow:
                        target[name] = source[name].clone()
                    elif gam == 0.0 and fresh is None:  # (lambda, 0): no fresh model needed
                        tensor = source[name]
                        target[name] = tensor.clone() if lam == 1.0 or not torch.is_floating_point(tensor) else lam * tensor
                    else:
                        if fresh is None or name not in fresh.models.get(key, {}):
                            raise KeyError(
                                f"fresh initialisation lacks {key}:{name}; the task's gene_modules and "
                                f"init_state disagree for gene {gene!r}"
                            )
                        target[name] = shrink_perturb(source[name], fresh.models[key][name], lam, gam)
                    moved.append(f"{key}:{name}")
            opt = child.optim.get(model_key)
            if opt is not None:
                for name in keys_under(list(opt), prefixes):
                    del opt[name]
                if donor_moments:
                    source_opt = donor.optim.get(model_key, {})
                    for name in keys_under(list(source_opt), prefixes):
                        opt[name] = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in source_opt[name].items()}
    return moved


def mix(
    task: Task,
    primary: tuple[Genome, MemberState],
    donor: tuple[Genome, MemberState],
    rng: np.random.Generator,
    *,
    p_donor: float = 0.25,
    lam: float = 0.4,
    gam: float = 0.1,
    donor_moments: bool = False,
) -> tuple[Genome, MemberState, ChildRecord]:
    """Make one child of ``primary`` (the fitter parent) and ``donor`` (SPEC §2.5).

    The child starts as a copy of the primary (weights, optimizer, extras), takes the donor's
    option for each gene marked with probability ``p_donor``, and for marked weight-owning genes
    the donor's tensors shrink-perturbed towards one fresh model of the child's architecture,
    initialised with a seed drawn from ``rng`` for this child.
    """
    p1_genome, p1_state = primary
    p2_genome, p2_state = donor
    marked = choose_donor_genes(task.space, rng, p_donor)
    seed = int(rng.integers(2**31 - 1))
    genome = dict(p1_genome)
    for gene in marked:
        genome[gene] = p2_genome[gene]
    child = p1_state.clone()
    needs_fresh = gam != 0.0 and any(task.space[g].owns_weights for g in marked)
    fresh = task.init_state(genome, seed) if needs_fresh else None
    moved = transplant(task, child, p2_state, fresh, marked, lam, gam, donor_moments)
    record = ChildRecord(
        operator="mix",
        genes_from_donor=marked,
        seed=seed,
        details={"lambda": lam, "gamma": gam, "tensors_moved": len(moved)},
    )
    return genome, child, record


def shrink_perturb_whole(
    task: Task, genome: Genome, state: MemberState, rng: np.random.Generator, lam: float = 0.4, gam: float = 0.1
) -> tuple[MemberState, ChildRecord]:
    """Shrink-perturb every floating tensor of every trained (non-shadow) model of a member.

    The ablation "random search with shrink-perturb": architecture and optimizer moments stay;
    shadow copies (EMA, target) are left as they are, as in mixing.
    """
    seed = int(rng.integers(2**31 - 1))
    fresh = task.init_state(genome, seed)
    out = state.clone()
    for key, sd in out.models.items():
        if key in task.shadow_models:
            continue
        for name, tensor in sd.items():
            sd[name] = shrink_perturb(tensor, fresh.models[key][name], lam, gam)
    return out, ChildRecord(operator="shrink_perturb_whole", seed=seed, details={"lambda": lam, "gamma": gam})
