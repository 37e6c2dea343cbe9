"""The GAN search spaces: gene counts, module ownership, and building every option."""

import numpy as np
import pytest
import torch
from run_helpers import tiny_gan_task

from pbtnas.search.state import keys_under


def make_task(space="gan", **kw):
    return tiny_gan_task(space, **{"batches_per_step": 2, **kw})


def test_gene_counts_match_the_spec():
    assert len(make_task("gan").space) == 21
    hard = make_task("gan-hard").space
    assert len(hard) == 72
    assert sum(n.startswith("g.cell") for n in hard.names) == 21
    assert sum(n.startswith("g.proj") for n in hard.names) == 11
    assert sum(n.startswith("d.block") for n in hard.names) == 40
    # Ops reading the image in the first discriminator block choose among the 5 convolutions.
    assert len(hard["d.block0.c0"].options) == 5 and len(hard["d.block1.c0"].options) == 7


@pytest.mark.parametrize("space", ["gan", "gan-hard"])
def test_genes_own_disjoint_prefixes_and_fixed_layers_are_unowned(space):
    task = make_task(space)
    genome = task.space.random_genome(np.random.default_rng(1))
    state = task.init_state(genome, 0)
    owned: dict[str, set] = {"gen": set(), "disc": set()}
    for gene in task.space.weight_genes:
        for key, prefixes in task.gene_modules(gene).items():
            mine = set(keys_under(state.models[key], prefixes))
            assert not (mine & owned[key]), f"{gene} shares tensors with another gene"
            owned[key] |= mine
    for gene in task.space.names:
        if not task.space[gene].owns_weights:
            assert task.gene_modules(gene) == {}
    fixed_gen = set(state.models["gen"]) - owned["gen"]
    assert all(k.startswith(("l1.", "head.")) or ".skip_in." in k for k in fixed_gen), sorted(fixed_gen)
    if space == "gan":
        assert not owned["disc"]  # the "gan" discriminator is fixed


@pytest.mark.parametrize("space", ["gan", "gan-hard"])
def test_every_option_of_every_gene_builds_and_runs(space):
    task = make_task(space)
    base = task.space.random_genome(np.random.default_rng(0))
    z, img = torch.randn(1, task.options.latent_dim), torch.rand(1, 1, 32, 32) * 2 - 1
    # The cell genes are the same in both spaces: try them once, in "gan". Discriminator blocks
    # 2 and 3 are built by the same code as block 1.
    genes = [g for g in task.space if (space == "gan" or not g.name.startswith("g.cell")) and not g.name.startswith(("d.block2.", "d.block3."))]
    for gene in genes:
        for option in gene.options:
            genome = {**base, gene.name: option}
            if gene.name.startswith("g."):
                out = task.build_generator(genome)(z)
                assert out.shape == (1, 1, 32, 32)
            else:
                out = task.build_discriminator(genome)(img)
                assert out.shape == (1,)
            assert torch.isfinite(out).all(), (gene.name, option)


def test_all_none_edges_give_a_legal_constant_generator():
    task = make_task("gan")
    genome = {g.name: ("none" if "none" in g.options else g.options[0]) for g in task.space}
    state = task.init_state(genome, 0)
    state, metrics = task.train_step(genome, state, 0, 0)
    assert np.isfinite(metrics["d_loss"])
