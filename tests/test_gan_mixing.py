"""Recombining GAN genomes with the mixing operator: children build, load strictly, train, and
their EMA takes transplanted layers from the donor's EMA exactly."""

import numpy as np
import pytest
import torch
from run_helpers import tiny_gan_task

from pbtnas.search.operators import mix, mutate
from pbtnas.search.state import keys_under


def make_task(space):
    return tiny_gan_task(space, batches_per_step=5, n_critic=5)


def _perturbed(state, scale, seed):
    # Give parents distinct, non-initial weights without paying for real training.
    gen = torch.Generator().manual_seed(seed)
    out = state.clone()
    for sd in out.models.values():
        for k, t in sd.items():
            if torch.is_floating_point(t):
                sd[k] = t + scale * torch.randn(t.shape, generator=gen)
    return out


@pytest.mark.parametrize("space", ["gan", "gan-hard"])
def test_random_pairs_recombine_into_working_children(space):
    task = make_task(space)
    rng = np.random.default_rng(7)
    for trial in range(4):
        g1, g2 = task.space.random_genome(rng), task.space.random_genome(rng)
        s1 = _perturbed(task.init_state(g1, 2 * trial), 0.01, trial)
        s2 = _perturbed(task.init_state(g2, 2 * trial + 1), 0.01, 100 + trial)
        s1.models["gen_ema"] = _perturbed(s1, 0.01, 200 + trial).models["gen_ema"]  # EMA != gen
        genome, child, record = mix(task, (g1, s1), (g2, s2), rng, p_donor=0.5)
        task.space.validate(genome)
        for key in ("gen", "gen_ema", "disc"):
            net = task._load(genome, child, key)  # strict load
            assert set(net.state_dict()) == set(child.models[key])
        # The EMA copies of transplanted layers are the donor's EMA tensors, bit for bit; the
        # rest of the EMA is the primary parent's.
        moved = set()
        for gene in record.genes_from_donor:
            for prefix in task.gene_modules(gene).get("gen", []):
                for name in keys_under(child.models["gen_ema"], [prefix]):
                    assert torch.equal(child.models["gen_ema"][name], s2.models["gen_ema"][name])
                    moved.add(name)
        for name, t in child.models["gen_ema"].items():
            if name not in moved:
                assert torch.equal(t, s1.models["gen_ema"][name])
        # Trained copies of transplanted layers are shrink-perturbed (0.4 donor + 0.1 fresh).
        for gene in record.genes_from_donor:
            for prefix in task.gene_modules(gene).get("gen", []):
                for name in keys_under(child.models["gen"], [prefix]):
                    if torch.is_floating_point(child.models["gen"][name]):
                        assert not torch.equal(child.models["gen"][name], s2.models["gen"][name])
        # Forward and backward through the child, and a real training step.
        gen, disc = task._load(genome, child, "gen"), task._load(genome, child, "disc")
        loss = disc(gen(torch.randn(3, 12))).mean()
        loss.backward()
        assert all(p.grad is None or torch.isfinite(p.grad).all() for p in gen.parameters())
        child, metrics = task.train_step(genome, child, 1, trial)
        assert np.isfinite(metrics["d_loss"]) and np.isfinite(metrics["g_loss"])


def test_optimizer_moments_of_transplanted_layers_are_reset_by_name():
    task = make_task("gan")
    rng = np.random.default_rng(3)
    g1, g2 = task.space.random_genome(rng), task.space.random_genome(rng)
    s1, _ = task.train_step(g1, task.init_state(g1, 0), 0, 0)
    s2, _ = task.train_step(g2, task.init_state(g2, 1), 0, 1)
    genome, child, record = mix(task, (g1, s1), (g2, s2), rng, p_donor=1.0)
    assert set(record.genes_from_donor) == set(task.space.names)
    # Every cell layer came from the donor, so only unowned layers (l1, skips, head) keep moments.
    assert child.optim["gen"] and all(n.startswith(("l1.", "head.")) or ".skip_in." in n for n in child.optim["gen"])
    # The fixed discriminator is owned by no gene: its moments are the primary parent's.
    assert set(child.optim["disc"]) == set(s1.optim["disc"])
    for name, entry in child.optim["disc"].items():
        assert torch.equal(entry["exp_avg"], s1.optim["disc"][name]["exp_avg"])


@pytest.mark.parametrize("branch", ["weights", "architecture"])
def test_mutation_baseline_works_on_gan_members(branch):
    task = make_task("gan-hard")
    rng = np.random.default_rng(5)
    g = task.space.random_genome(rng)
    s = task.init_state(g, 0)
    genome, child, _ = mutate(task, (g, s), rng, branch=branch)
    for key in ("gen", "gen_ema", "disc"):
        task._load(genome, child, key)
    task.train_step(genome, child, 0, 0)
