"""The RL search spaces (docs/algorithm.md §5): 28 genes from states, 36 with the pixel encoder.

Gene names and the module paths each weight-owning gene owns live here together, so the two
can be read side by side. Paths are relative to the model keys ``actor``, ``critic`` (whose
shadow ``critic_target`` reuses them) and ``encoder``.
"""

from __future__ import annotations

from pbtnas.search.space import Gene, SearchSpace
from pbtnas.tasks.rl.layers import ACTIVATIONS, CONV_LAYERS, MLP_LAYERS
from pbtnas.tasks.rl.networks import N_LAYERS

FEATURE_DIMS = (25, 50, 100, 150)
SPECTRAL = (False, True)


def _mlp_genes(prefix: str, what: str) -> list[Gene]:
    genes = [Gene(f"{prefix}.layer{i}", MLP_LAYERS, True, f"hidden layer {i} of the {what}") for i in range(N_LAYERS)]
    genes += [
        Gene(f"{prefix}.act{i}", ACTIVATIONS, False, f"activation after {'the input layer' if i == 0 else f'hidden layer {i - 1}'} of the {what}")
        for i in range(N_LAYERS + 1)
    ]
    genes.append(Gene(f"{prefix}.sn", SPECTRAL, False, f"spectral norm on the hidden layers of the {what}"))
    return genes


def rl_space(pixels: bool) -> SearchSpace:
    """The 28-gene space (actor 10, critic 18), plus 8 encoder genes with ``pixels``."""
    genes: list[Gene] = []
    if pixels:
        genes += [Gene(f"encoder.layer{i}", CONV_LAYERS, True, f"searchable layer {i} of the encoder") for i in range(N_LAYERS)]
        genes += [Gene(f"encoder.act{i}", ACTIVATIONS, False, f"activation {i} of the encoder") for i in range(N_LAYERS + 1)]
        genes.append(Gene("encoder.sn", SPECTRAL, False, "spectral norm on the searchable encoder layers"))
    genes += [
        Gene("actor.feature_dim", FEATURE_DIMS, True, "width of the actor's trunk (owns trunk and input layer)"),
        Gene("actor.trunk_act", ACTIVATIONS, False, "activation of the actor's trunk"),
    ]
    genes += _mlp_genes("actor", "actor")
    genes += [
        Gene("critic.feature_dim", FEATURE_DIMS, True, "width of the critic's shared trunk (owns trunk and both Q input layers)"),
        Gene("critic.trunk_act", ACTIVATIONS, False, "activation of the critic's shared trunk"),
    ]
    genes += _mlp_genes("critic.q1", "first Q network")
    genes += _mlp_genes("critic.q2", "second Q network")
    return SearchSpace(genes, name="rl-pixels" if pixels else "rl-states")


def gene_modules(space: SearchSpace, gene: str) -> dict[str, list[str]]:
    """Module prefixes a gene owns per model key (``{}`` for weightless genes)."""
    if not space[gene].owns_weights:
        return {}
    parts = gene.split(".")
    if parts[0] == "encoder":  # encoder.layerI
        return {"encoder": [f"layers.{parts[1][len('layer') :]}"]}
    if gene == "actor.feature_dim":
        return {"actor": ["trunk", "policy.fc_in"]}
    if gene == "critic.feature_dim":
        return {"critic": ["trunk", "q1.fc_in", "q2.fc_in"]}
    if parts[0] == "actor":  # actor.layerI
        return {"actor": [f"policy.layers.{parts[1][len('layer') :]}"]}
    if parts[0] == "critic":  # critic.qJ.layerI
        return {"critic": [f"{parts[1]}.layers.{parts[2][len('layer') :]}"]}
    raise KeyError(f"gene {gene!r} owns weights but has no module path")
