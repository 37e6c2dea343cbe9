"""The SEARL-like mutation baseline: copy a parent, then with probability 1/3 each do nothing,
mutate weights, or mutate one gene of the architecture. Pure: no I/O.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from pbtnas.search.operators.mixing import ChildRecord
from pbtnas.search.operators.shapes import adapt_to_architecture, reference_models
from pbtnas.search.space import Genome
from pbtnas.search.state import MemberState, keys_under
from pbtnas.search.task_protocol import TaskProtocol

BRANCHES = ("none", "weights", "architecture")


def mutate(
    task: TaskProtocol,
    parent: tuple[Genome, MemberState],
    rng: np.random.Generator,
    branch: str | None = None,
) -> tuple[Genome, MemberState, ChildRecord]:
    """A mutated copy of ``parent``. ``branch`` forces one of :data:`BRANCHES` (tests)."""
    genome, state = dict(parent[0]), parent[1].clone()
    if branch is None:
        branch = BRANCHES[int(rng.integers(3))]
    seed = int(rng.integers(2**31 - 1))
    record = ChildRecord(operator=f"mutation:{branch}", seed=seed, single_parent=True)
    if branch == "weights":
        record.details.update(mutate_weights(task, state, rng, seed))
    elif branch == "architecture":
        genome, details = mutate_architecture(task, genome, state, rng, seed)
        record.details.update(details)
        record.genes_from_donor = []
    elif branch != "none":
        raise ValueError(f"unknown mutation branch {branch!r}")
    return genome, state, record


def mutate_weights(task: TaskProtocol, state: MemberState, rng: np.random.Generator, seed: int) -> dict:
    """Gaussian weight mutation of k random multi-dimensional, non-normalisation tensors."""
    candidates = task.mutable_tensors(state)
    if not candidates:
        return {"tensors": [], "elements": 0}
    k = int(rng.integers(1, len(candidates) + 1))
    chosen = sorted(int(i) for i in rng.choice(len(candidates), size=k, replace=False))
    gen = torch.Generator().manual_seed(seed)
    changed = 0
    names = []
    for idx in chosen:
        model_key, name = candidates[idx]
        tensor = state.models[model_key][name]
        d0 = tensor.shape[0]
        m = int(rng.integers(0, max(1, math.ceil(0.1 * d0))))
        prob = m / d0
        flat = tensor.detach().clone().reshape(-1)
        hit = torch.rand(flat.shape, generator=gen) < prob
        kind = torch.rand(flat.shape, generator=gen)
        noise = torch.randn(flat.shape, generator=gen, dtype=flat.dtype)
        big = kind < 0.05
        reset = (kind >= 0.05) & (kind < 0.10)
        small = kind >= 0.10
        mutated = flat.clone()
        mutated = torch.where(hit & big, flat + noise * (10 * flat).abs(), mutated)
        mutated = torch.where(hit & reset, noise, mutated)
        mutated = torch.where(hit & small, flat + noise * (0.1 * flat).abs(), mutated)
        state.models[model_key][name] = mutated.clamp(-1e6, 1e6).reshape(tensor.shape)
        changed += int(hit.sum())
        names.append(f"{model_key}:{name}")
    return {"tensors": names, "elements": changed}


def mutate_architecture(task: TaskProtocol, genome: Genome, state: MemberState, rng: np.random.Generator, seed: int) -> tuple[Genome, dict]:
    """Give one random gene a different random option; its layer (and shadow copy) starts fresh.

    Called by :func:`mutate` on the child's copy of ``state`` (edited in place). The fresh
    model, seeded by ``seed``, also fits the rest of the state to the new architecture: when the
    new option has another width, the layers consuming its output keep their overlapping slice
    and take the rest fresh (see :mod:`.shapes`), and their optimizer moments are reset.
    """
    genes = [g for g in task.space.genes if len(g.options) > 1]
    gene = genes[int(rng.integers(len(genes)))]
    current = task.space.option_index(genome, gene.name)
    others = [i for i in range(len(gene.options)) if i != current]
    new_option = gene.options[others[int(rng.integers(len(others)))]]
    genome = dict(genome)
    old_option = genome[gene.name]
    genome[gene.name] = new_option
    # Built for weightless genes too: an option may still change the shapes of other layers.
    # init_state seeds its own stream, so building it draws nothing from ``rng``.
    fresh = task.init_state(genome, seed)
    refs = reference_models(task, fresh)
    if gene.owns_weights:
        for model_key, prefixes in task.gene_modules(gene.name).items():
            shadows = [s for s, src in task.shadow_models.items() if src == model_key]
            for key in [model_key] + shadows:
                if key not in state.models or key not in refs:
                    continue
                target = state.models[key]
                for name in keys_under(list(target), prefixes):
                    del target[name]
                for name in keys_under(list(refs[key]), prefixes):
                    target[name] = refs[key][name].clone()
            opt = state.optim.get(model_key, {})
            for name in keys_under(list(opt), prefixes):
                del opt[name]
    adapted = adapt_to_architecture(task, state, fresh)
    return genome, {"gene": gene.name, "from": old_option, "to": new_option, "tensors_adapted": len(adapted)}
