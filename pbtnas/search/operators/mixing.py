"""PBT-NAS's variation operator: architecture mixing with shrink-perturb weight inheritance.

Pure functions of (parents' genomes and states, rng); they return the child and a record of
what they did, and do no I/O. How a child inherits is described in ``docs/inheritance.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from pbtnas.search.constants import SP_BUFFERS
from pbtnas.search.operators.shapes import adapt_to_architecture, drop_moments, fit_to, reference_models
from pbtnas.search.space import Genome, SearchSpace
from pbtnas.search.state import MemberState, is_continuous, keys_under
from pbtnas.search.task_protocol import TaskProtocol


@dataclass
class ChildRecord:
    """What an operator did to make one child (journaled as the ``child_created`` event)."""

    operator: str
    primary: int | None = None
    donor: int | None = None
    genes_from_donor: list[str] = field(default_factory=list)
    seed: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    #: made from the primary parent alone (mutation, no-mixing): the member drawn with it gave
    #: nothing, so the journal names no donor and one parent (docs/algorithm.md)
    single_parent: bool = False

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
    """``lam * donor + gam * fresh`` for floating (and complex) tensors; integer tensors are copied unchanged."""
    if not is_continuous(donor):
        return donor.clone()
    if donor.shape != fresh.shape:
        raise ValueError(f"shape mismatch in shrink-perturb: donor {tuple(donor.shape)} vs fresh {tuple(fresh.shape)}")
    if lam == 1.0 and gam == 0.0:  # exact copy, bit for bit
        return donor.clone()
    return (lam * donor + gam * fresh.to(donor.dtype)).to(donor.dtype)


def transplant(
    task: TaskProtocol,
    child: MemberState,
    donor: MemberState,
    fresh: MemberState | None,
    genes: list[str],
    lam: float,
    gam: float,
    donor_moments: bool = False,
    sp_buffers: str = "all",
) -> list[str]:
    """Replace, in ``child`` (edited in place), the layers of ``genes`` by the donor's.

    Called by :func:`mix` on a child that is still a copy of the primary parent. For every model
    key a gene owns: the child's tensors under the gene's module prefixes are deleted and the
    donor's inserted, shrink-perturbed with ``fresh`` (with ``sp_buffers="parameters"`` the
    task's buffers, see :meth:`Task.is_buffer`, are copied instead). Shadow models (EMA,
    target) take the donor's tensors unchanged. Optimizer entries of those parameters are
    dropped (moments reset) or, with ``donor_moments``, taken from the donor.

    When ``fresh`` is given, every transplanted tensor is fitted to its shape (see
    :mod:`.shapes`): a donor tensor of another shape keeps the overlap, shrink-perturbed, and the
    rest is fresh; its moments are dropped even with ``donor_moments``. Donor tensors the
    child's architecture lacks are skipped. Without ``fresh`` (allowed only when ``gam`` is 0)
    tensors are moved as they are. Tensors no marked gene owns are not touched here, not even
    when their shape no longer fits: :func:`.shapes.adapt_to_architecture` does that.

    Never edits ``donor`` or ``fresh``. Returns the state keys that were transplanted, as
    ``"model:tensor"`` strings.
    """
    if sp_buffers not in SP_BUFFERS:
        raise ValueError(f"sp_buffers must be one of {SP_BUFFERS}, got {sp_buffers!r}")
    refs = reference_models(task, fresh) if fresh is not None else {}
    moved: list[str] = []
    for gene in genes:
        if not task.space[gene].owns_weights:
            continue
        for model_key, prefixes in task.gene_modules(gene).items():
            refit: list[str] = []
            for key in [model_key] + [s for s, src in task.shadow_models.items() if src == model_key]:
                if key not in child.models:
                    continue
                target = child.models[key]
                for name in keys_under(list(target), prefixes):
                    del target[name]
                source = donor.models.get(key, {})
                ref = refs.get(key)
                for name in keys_under(list(source), prefixes):
                    if ref is not None and name not in ref:
                        refit.append(name)  # the donor's option needs a tensor the child's does not
                        continue
                    # Shadows and, on request, buffers are copied: only the trained copy's
                    # learnable tensors are shrink-perturbed.
                    perturb = key == model_key and not (sp_buffers == "parameters" and task.is_buffer(key, name))
                    target[name] = _inherit(source[name], None if ref is None else ref[name], lam, gam, perturb)
                    if target[name].shape != source[name].shape:
                        refit.append(name)
                    moved.append(f"{key}:{name}")
            opt = child.optim.get(model_key)
            if opt is not None:
                for name in keys_under(list(opt), prefixes):
                    del opt[name]
                if donor_moments:
                    source_opt = donor.optim.get(model_key, {})
                    for name in keys_under(list(source_opt), prefixes):
                        opt[name] = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in source_opt[name].items()}
                drop_moments(child, model_key, refit)
    return moved


def _inherit(source: torch.Tensor, fresh: torch.Tensor | None, lam: float, gam: float, perturb: bool) -> torch.Tensor:
    """The child's tensor made from one donor tensor (and its fresh counterpart, if any).

    Called by :func:`transplant` once per transplanted tensor; never edits its arguments.
    """
    if perturb and gam != 0.0:
        if fresh is None:
            raise ValueError("shrink-perturb with gamma != 0 needs a fresh model of the child's architecture")
        return fit_to(source, fresh, lambda d, f: shrink_perturb(d, f, lam, gam))
    if not perturb or lam == 1.0 or not is_continuous(source):
        value = source.clone()
    else:
        # (lambda, 0): no fresh term on the overlap, so the result is the same whether or not a
        # fresh model was built.
        value = lam * source
    return value if fresh is None else fit_to(value, fresh)


def mix(
    task: TaskProtocol,
    primary: tuple[Genome, MemberState],
    donor: tuple[Genome, MemberState],
    rng: np.random.Generator,
    *,
    p_donor: float = 0.25,
    lam: float = 0.4,
    gam: float = 0.1,
    donor_moments: bool = False,
    sp_buffers: str = "all",
) -> tuple[Genome, MemberState, ChildRecord]:
    """Make one child of ``primary`` (the fitter parent) and ``donor``.

    Called by the algorithm for every replaced slot; reads the parents and never edits them.
    The child starts as a copy of the primary (weights, optimizer, extras), takes the donor's
    option for each gene marked with probability ``p_donor``, and for marked weight-owning genes
    the donor's tensors shrink-perturbed towards one fresh model of the child's architecture,
    initialised with a seed drawn from ``rng`` for this child. The same fresh model fits every
    tensor to the child's architecture when options differ in width (see :mod:`.shapes`).
    """
    p1_genome, p1_state = primary
    p2_genome, p2_state = donor
    marked = choose_donor_genes(task.space, rng, p_donor)
    seed = int(rng.integers(2**31 - 1))
    genome = dict(p1_genome)
    for gene in marked:
        genome[gene] = p2_genome[gene]
    child = p1_state.clone()
    # The fresh model is the reference for shapes as well as the perturbation, so it is built
    # whenever the child's architecture may differ from the primary's. Building it draws
    # nothing from ``rng`` (the seed above is drawn either way) and the task's init_state
    # seeds its own stream, so results do not depend on whether it was built.
    needs_fresh = any(task.space[g].owns_weights for g in marked) or genome != p1_genome
    fresh = task.init_state(genome, seed) if needs_fresh else None
    moved = transplant(task, child, p2_state, fresh, marked, lam, gam, donor_moments, sp_buffers)
    adapted = adapt_to_architecture(task, child, fresh) if fresh is not None else []
    record = ChildRecord(
        operator="mix",
        genes_from_donor=marked,
        seed=seed,
        details={"lambda": lam, "gamma": gam, "tensors_moved": len(moved), "tensors_adapted": len(adapted)},
    )
    return genome, child, record


def shrink_perturb_whole(
    task: TaskProtocol, genome: Genome, state: MemberState, rng: np.random.Generator, lam: float = 0.4, gam: float = 0.1
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
