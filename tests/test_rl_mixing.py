"""Architecture mixing on the RL agent: children of random parent pairs build, load strictly,
act and update; target-critic layers of transplanted genes are the donor's, bit for bit; weightless
genes move no tensor; every gene's module paths exist and no two genes own the same tensor."""

import numpy as np
import pytest
import torch

pytest.importorskip("dm_control")

from run_helpers import RL_TINY  # noqa: E402

from pbtnas.search.operators import mix, transplant  # noqa: E402
from pbtnas.search.state import keys_under  # noqa: E402
from pbtnas.tasks.rl.task import RLOptions, RLTask  # noqa: E402

TINY = {**RL_TINY, "lr": 1e-3}


@pytest.fixture(scope="module")
def task():
    return RLTask(RLOptions(**TINY))


def trained(task, genome, seed):
    state = task.init_state(genome, seed)
    state, _ = task.train_step(genome, state, 0, seed + 1)
    return state


def test_spaces_have_the_paper_gene_counts():
    assert len(RLTask(RLOptions(**TINY)).space) == 28
    assert len(RLTask(RLOptions(**{**TINY, "pixels": True})).space) == 36


def test_gene_modules_cover_disjoint_existing_tensors(task):
    rng = np.random.default_rng(0)
    for _ in range(5):
        genome = task.space.random_genome(rng)
        state = task.init_state(genome, 1)
        owner = {}
        for gene in task.space.names:
            mods = task.gene_modules(gene)
            if not task.space[gene].owns_weights:
                assert mods == {}
                continue
            for key, prefixes in mods.items():
                for name in keys_under(state.models[key], prefixes):
                    assert (key, name) not in owner, f"{name} owned by {owner.get((key, name))} and {gene}"
                    owner[(key, name)] = gene
        # a gene whose option has weights owns some tensor
        for gene in task.space.weight_genes:
            if genome[gene] != "identity":
                assert gene in owner.values(), gene


@pytest.mark.parametrize("pair_seed", [0, 1, 2])
def test_children_of_random_pairs_build_act_and_update(task, pair_seed):
    rng = np.random.default_rng(pair_seed)
    g1, g2 = task.space.random_genome(rng), task.space.random_genome(rng)
    s1, s2 = trained(task, g1, 10 + pair_seed), trained(task, g2, 20 + pair_seed)
    assert not torch.equal(s2.models["critic"]["q1.head.weight"], s2.models["critic_target"]["q1.head.weight"])
    child_g, child_s, record = mix(task, (g1, s1), (g2, s2), rng, p_donor=0.5)
    assert record.genes_from_donor

    for gene in record.genes_from_donor:
        for key, prefixes in task.gene_modules(gene).items():
            if key != "critic":
                continue
            donor_target = s2.models["critic_target"]
            names = keys_under(donor_target, prefixes)
            assert set(keys_under(child_s.models["critic_target"], prefixes)) == set(names)
            for name in names:
                assert torch.equal(child_s.models["critic_target"][name], donor_target[name])
                if torch.is_floating_point(donor_target[name]) and donor_target[name].abs().sum() > 0:
                    # the online critic's copy is shrink-perturbed, so it differs from the donor's
                    assert not torch.equal(child_s.models["critic"][name], s2.models["critic"][name])
    # layers no marked gene owns stay the primary's
    assert torch.equal(child_s.models["critic"]["q1.head.weight"], s1.models["critic"]["q1.head.weight"])
    # the exploration schedule continues: counters come from the primary parent
    assert child_s.extra["frames"] == s1.extra["frames"]

    nets = task.load_nets(child_g, child_s, train=True)  # strict loading inside
    module = task.build_module(child_g, child_s)
    action = module(torch.zeros(1, *module.obs_shape))
    assert action.shape == (1, module.action_dim) and torch.isfinite(action).all()
    new_state, metrics = task.train_step(child_g, child_s, 1, 99)
    assert metrics["updates"] > child_s.extra["updates"]
    assert np.isfinite(metrics["critic_loss"])
    del nets


def test_weightless_genes_move_no_tensor(task):
    rng = np.random.default_rng(5)
    g1, g2 = task.space.random_genome(rng), task.space.random_genome(rng)
    s1, s2 = trained(task, g1, 1), trained(task, g2, 2)
    weightless = [g.name for g in task.space if not g.owns_weights]
    assert len(weightless) == 28 - 11  # 2 widths and 9 hidden layers own weights from states
    child = s1.clone()
    moved = transplant(task, child, s2, task.init_state(g1, 3), weightless, 0.4, 0.1)
    assert moved == []
    for key in s1.models:
        for name, tensor in s1.models[key].items():
            assert torch.equal(child.models[key][name], tensor)
    # and a child that takes only weightless genes from the donor loads the primary's tensors strictly
    child_g = dict(g1)
    for gene in weightless:
        child_g[gene] = g2[gene]
    task.load_nets(child_g, child, train=False)
