"""Mixing with shrink-perturb, optimizer-state mapping and the mutation baseline on a toy model."""

import numpy as np
import pytest
import torch
from run_helpers import trained_for
from toy_task import ToyNet, ToyTask

from pbtnas.search.operators import mix, mutate, shrink_perturb_whole, transplant


@pytest.fixture()
def task():
    return ToyTask()


def trained(task, genome, seed, steps=2):
    return trained_for(task, genome, seed, steps, distinct_shadow=True)


G1 = {"l0": "linear", "l1": "narrow", "act": "relu"}
G2 = {"l0": "linear", "l1": "wide", "act": "tanh"}


def test_shrink_perturb_exact_on_owned_layers_and_primary_elsewhere(task):
    p1, p2 = trained(task, G1, 1), trained(task, G2, 2)
    child = p1.clone()
    child_genome = {**G1, "l1": "wide"}
    fresh = task.init_state(child_genome, 99)
    transplant(task, child, p2, fresh, ["l1"], lam=0.4, gam=0.1)
    m = child.models["model"]
    for name in ("l1.0.weight", "l1.0.bias", "l1.1.weight", "l1.1.bias"):
        expected = 0.4 * p2.models["model"][name] + 0.1 * fresh.models["model"][name]
        assert torch.equal(m[name], expected), name
    for name in ("stem.weight", "l0.0.weight", "l0.1.running_mean", "head.weight"):
        assert torch.equal(m[name], p1.models["model"][name]), name
    # the child's state dict loads strictly into the child's architecture
    ToyNet(child_genome, 4).load_state_dict(m, strict=True)


def test_integer_tensors_copied_and_norm_statistics_shrunk(task):
    p1, p2 = trained(task, G1, 1), trained(task, G2, 2, steps=3)
    child, fresh = p1.clone(), task.init_state(G1, 5)
    transplant(task, child, p2, fresh, ["l0"], lam=0.4, gam=0.1)
    m = child.models["model"]
    assert m["l0.1.num_batches_tracked"].dtype == torch.long
    assert int(m["l0.1.num_batches_tracked"]) == int(p2.models["model"]["l0.1.num_batches_tracked"]) == 3
    rv = 0.4 * p2.models["model"]["l0.1.running_var"] + 0.1 * fresh.models["model"]["l0.1.running_var"]
    assert torch.equal(m["l0.1.running_var"], rv)


def test_shadow_copy_taken_from_donor_without_shrink_perturb(task):
    p1, p2 = trained(task, G1, 1), trained(task, G2, 2)
    child = p1.clone()
    transplant(task, child, p2, task.init_state({**G1, "l1": "wide"}, 3), ["l1"], 0.4, 0.1)
    for name, t in child.models["ema"].items():
        source = p2 if name.startswith("l1.") else p1
        assert torch.equal(t, source.models["ema"][name]), name


def test_adam_moments_kept_for_kept_layers_and_reset_for_transplanted(task):
    p1, p2 = trained(task, G1, 1), trained(task, G2, 2)
    child = p1.clone()
    transplant(task, child, p2, task.init_state({**G1, "l1": "wide"}, 3), ["l1"], 0.4, 0.1)
    opt = child.optim["model"]
    assert not any(k.startswith("l1.") for k in opt)
    for name in ("stem.weight", "l0.0.weight", "head.bias"):
        assert torch.equal(opt[name]["exp_avg"], p1.optim["model"][name]["exp_avg"])
    # the reset moments really start fresh when the child trains
    genome = {**G1, "l1": "wide"}
    net = task._net(genome, child)
    adam = torch.optim.Adam(net.parameters())
    from pbtnas.search.state import restore_optimizer

    restore_optimizer(adam, net, opt)
    named = dict(net.named_parameters())
    assert named["l1.0.weight"] not in adam.state and named["stem.weight"] in adam.state


def test_donor_moments_option_takes_the_donors(task):
    p1, p2 = trained(task, G1, 1), trained(task, G2, 2)
    child = p1.clone()
    transplant(task, child, p2, task.init_state({**G1, "l1": "wide"}, 3), ["l1"], 0.4, 0.1, donor_moments=True)
    assert torch.equal(child.optim["model"]["l1.0.weight"]["exp_avg"], p2.optim["model"]["l1.0.weight"]["exp_avg"])


def test_special_cases_exact_copy_and_reinitialisation(task):
    p1, p2 = trained(task, G1, 1), trained(task, G2, 2)
    fresh = task.init_state({**G1, "l1": "wide"}, 3)
    copy_child, reinit_child = p1.clone(), p1.clone()
    transplant(task, copy_child, p2, fresh, ["l1"], 1.0, 0.0)
    transplant(task, reinit_child, p2, fresh, ["l1"], 0.0, 1.0)
    w = "l1.1.weight"
    assert torch.equal(copy_child.models["model"][w], p2.models["model"][w])
    assert torch.equal(reinit_child.models["model"][w], fresh.models["model"][w])


def test_mix_marks_genes_with_p_donor_and_weightless_genes_move_nothing(task):
    p1, p2 = trained(task, G1, 1), trained(task, G2, 2)
    rng = np.random.default_rng(0)
    genome, child, record = mix(task, (G1, p1), (G2, p2), rng, p_donor=1.0)
    assert genome == G2 and set(record.genes_from_donor) == {"l0", "l1", "act"}
    genome, child, record = mix(task, (G1, p1), (G2, p2), rng, p_donor=0.0)
    assert genome == G1 and record.genes_from_donor == []
    assert all(torch.equal(child.models["model"][k], p1.models["model"][k]) for k in p1.models["model"])
    # only the activation marked: the genome changes, no tensor moves
    only_act = [g for g in range(200) if mix(task, (G1, p1), (G2, p2), np.random.default_rng(g), p_donor=0.25)[2].genes_from_donor == ["act"]]
    genome, child, record = mix(task, (G1, p1), (G2, p2), np.random.default_rng(only_act[0]), p_donor=0.25)
    assert genome["act"] == "tanh" and record.details["tensors_moved"] == 0
    # p_donor frequency is right over many draws
    marks = [len(mix(task, (G1, p1), (G2, p2), np.random.default_rng(s), p_donor=0.25)[2].genes_from_donor) for s in range(400)]
    assert 0.18 < np.mean(marks) / 3 < 0.32


def test_children_of_the_same_parents_get_distinct_seeds(task):
    p1, p2 = trained(task, G1, 1), trained(task, G2, 2)
    seeds = {mix(task, (G1, p1), (G2, p2), np.random.default_rng(s))[2].seed for s in range(10)}
    assert len(seeds) == 10


def test_mutation_none_branch_is_an_exact_copy(task):
    p = trained(task, G1, 1)
    genome, child, record = mutate(task, (G1, p), np.random.default_rng(0), branch="none")
    assert genome == G1 and record.operator == "mutation:none"
    assert all(torch.equal(child.models[m][k], p.models[m][k]) for m in p.models for k in p.models[m])


def test_mutation_weights_branch_changes_only_multidimensional_tensors():
    # m is drawn from [0, ceil(0.1 * d0)): tensors need d0 > 10 to be mutable at all
    from toy_task import ToyOptions

    task = ToyTask(ToyOptions(width=24))
    p = trained(task, {**G1, "l1": "wide"}, 1)
    changed_any = False
    for seed in range(20):
        genome, child, record = mutate(task, ({**G1, "l1": "wide"}, p), np.random.default_rng(seed), branch="weights")
        for key, t in child.models["model"].items():
            if not torch.equal(t, p.models["model"][key]):
                changed_any = True
                assert t.dim() > 1 and f"model:{key}" in record.details["tensors"]
                assert t.abs().max() <= 1e6
        assert all(torch.equal(child.models["ema"][k], p.models["ema"][k]) for k in p.models["ema"])
    assert changed_any


def test_mutation_architecture_branch_changes_one_gene_and_reinitialises_its_layer(task):
    p = trained(task, G1, 1)
    for seed in range(30):
        genome, child, record = mutate(task, (G1, p), np.random.default_rng(seed), branch="architecture")
        diff = [g for g in G1 if genome[g] != G1[g]]
        assert diff == [record.details["gene"]]
        gene = diff[0]
        if gene == "l1":
            fresh = task.init_state(genome, record.seed)
            for key in ("model", "ema"):
                assert torch.equal(child.models[key]["l1.0.weight"], fresh.models[key]["l1.0.weight"])
            assert not any(k.startswith("l1.") for k in child.optim["model"])
            ToyNet(genome, 4).load_state_dict(child.models["model"], strict=True)


def test_mutation_branches_are_each_about_one_third(task):
    p = trained(task, G1, 1)
    ops = [mutate(task, (G1, p), np.random.default_rng(s))[2].operator for s in range(300)]
    for branch in ("none", "weights", "architecture"):
        assert 0.25 < ops.count(f"mutation:{branch}") / 300 < 0.42


def test_whole_network_shrink_perturb_leaves_shadow(task):
    p = trained(task, G1, 1)
    out, record = shrink_perturb_whole(task, G1, p, np.random.default_rng(0))
    fresh = task.init_state(G1, record.seed)
    assert torch.equal(out.models["model"]["stem.weight"], 0.4 * p.models["model"]["stem.weight"] + 0.1 * fresh.models["model"]["stem.weight"])
    assert torch.equal(out.models["ema"]["stem.weight"], p.models["ema"]["stem.weight"])


def test_shrink_perturb_applies_to_complex_tensors_and_copies_integer_ones():
    from pbtnas.search.operators.mixing import shrink_perturb

    donor, fresh = torch.tensor([1 + 2j, -3j]), torch.tensor([10 + 0j, 10j])
    assert torch.equal(shrink_perturb(donor, fresh, 0.4, 0.1), 0.4 * donor + 0.1 * fresh)
    counts = torch.tensor([3, 4])
    assert torch.equal(shrink_perturb(counts, torch.zeros(2, dtype=torch.long), 0.4, 0.1), counts)
