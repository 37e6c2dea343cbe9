"""Width genes: options that change the shape of a layer and of the layer consuming its output.

The toy task is a 3-layer MLP ``3 -> w1 -> w2 -> 1``: gene ``w1`` owns ``h1`` (and so sets the
input width of ``h2``), gene ``w2`` owns ``h2`` (and so sets the input width of the fixed
``head``, which no gene owns), and ``act`` is weightless. A child's inherited tensors keep the
overlapping slice and take the rest from the fresh model of the child's architecture.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
import torch
from run_helpers import trained_for
from torch import nn

from pbtnas.search.operators import choose_donor_genes, mix, mutate, shrink_perturb
from pbtnas.search.operators.shapes import adapt_to_architecture, fit_to
from pbtnas.search.space import Gene, SearchSpace
from pbtnas.search.state import (
    MemberState,
    capture_optimizer,
    restore_optimizer,
    state_dict_cpu,
)
from pbtnas.tasks.base import Task, doc


@dataclass
class WidthOptions:
    batch_size: int = doc("training batch size", 32)


class WidthNet(nn.Module):
    def __init__(self, genome):
        super().__init__()
        self.h1 = nn.Linear(3, genome["w1"])
        self.h2 = nn.Linear(genome["w1"], genome["w2"])
        self.head = nn.Linear(genome["w2"], 1)
        self.act = nn.ReLU() if genome["act"] == "relu" else nn.Tanh()

    def forward(self, x):
        return self.head(self.act(self.h2(self.act(self.h1(x)))))


def _data(seed: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(n, 3, generator=torch.Generator().manual_seed(seed))
    return x, torch.sin(x).sum(1, keepdim=True)


class WidthTask(Task):
    """An MLP whose two hidden widths are searched, with an EMA shadow of the model."""

    Options = WidthOptions
    shadow_models: ClassVar[dict[str, str]] = {"ema": "model"}
    fitness_name = "neg_mse"
    final_metric_name = "neg_mse"

    def __init__(self, options=None):
        super().__init__(options or WidthOptions())
        self.space = SearchSpace(
            [
                Gene("w1", (4, 8)),
                Gene("w2", (6, 10)),
                Gene("act", ("relu", "tanh"), owns_weights=False),
            ],
            name="width-toy",
        )

    def gene_modules(self, gene):
        return {"w1": {"model": ["h1"]}, "w2": {"model": ["h2"]}}.get(gene, {})

    def init_state(self, genome, seed):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            sd = state_dict_cpu(WidthNet(genome))
        return MemberState(models={"model": sd, "ema": {k: v.clone() for k, v in sd.items()}}, optim={"model": {}})

    def _net(self, genome, state, key="model"):
        with torch.random.fork_rng(devices=[]):  # building draws an init the load overwrites
            net = WidthNet(genome)
        net.load_state_dict(state.models[key], strict=True)
        return net

    def train_step(self, genome, state, step, seed):
        net = self._net(genome, state)
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        restore_optimizer(opt, net, state.optim.get("model", {}))
        x, y = _data(seed, self.options.batch_size)
        loss = ((net(x) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sd = state_dict_cpu(net)
        ema = {k: 0.5 * state.models["ema"][k] + 0.5 * v for k, v in sd.items()}
        return MemberState(models={"model": sd, "ema": ema}, optim={"model": capture_optimizer(opt, net)}), {"loss": loss.item()}

    def evaluate(self, genome, state, seed):
        x, y = _data(10_000, 64)
        with torch.no_grad():
            return -float(((self._net(genome, state)(x) - y) ** 2).mean())

    def final_evaluate(self, genome, state, seed):
        return {"neg_mse": self.evaluate(genome, state, seed)}

    def build_module(self, genome, state):
        return self._net(genome, state, "ema").eval()


SMALL = {"w1": 4, "w2": 6, "act": "relu"}
BIG = {"w1": 8, "w2": 10, "act": "tanh"}


@pytest.fixture()
def task():
    return WidthTask()


def trained(task, genome, seed, steps=2):
    return trained_for(task, genome, seed, steps)


def rng_marking(task, genes, p_donor=0.5):
    """An rng with which :func:`mix` marks exactly ``genes`` (its first draws choose them)."""
    for s in range(1000):
        if choose_donor_genes(task.space, np.random.default_rng(s), p_donor) == genes:
            return np.random.default_rng(s)
    raise AssertionError(f"no seed marks exactly {genes}")


def assert_strict_load(genome, child):
    for key in ("model", "ema"):
        WidthNet(genome).load_state_dict(child.models[key], strict=True)


def test_widened_layer_is_shrink_perturbed_and_its_unmarked_consumer_sliced(task):
    p1, p2 = trained(task, SMALL, 1), trained(task, BIG, 2)
    genome, child, record = mix(task, (SMALL, p1), (BIG, p2), rng_marking(task, ["w1"]), p_donor=0.5)
    assert genome == {"w1": 8, "w2": 6, "act": "relu"}
    fresh = task.init_state(genome, record.seed)
    m, f, a, b = child.models["model"], fresh.models["model"], p1.models["model"], p2.models["model"]
    # the marked layer: the donor's tensors shrink-perturbed, as in any space
    for name in ("h1.weight", "h1.bias"):
        assert torch.equal(m[name], 0.4 * b[name] + 0.1 * f[name]), name
    # its consumer h2 (owned by the unmarked gene w2) reads 8 inputs instead of 4: the primary's
    # columns are copied unchanged, the new columns are the fresh model's
    assert m["h2.weight"].shape == (6, 8)
    assert torch.equal(m["h2.weight"][:, :4], a["h2.weight"])
    assert torch.equal(m["h2.weight"][:, 4:], f["h2.weight"][:, 4:])
    for name in ("h2.bias", "head.weight", "head.bias"):
        assert torch.equal(m[name], a[name]), name
    # shadow: the donor's EMA for the marked layer, the primary's EMA sliced for the consumer
    ema, fresh_ema = child.models["ema"], fresh.models["ema"]
    for name in ("h1.weight", "h1.bias"):
        assert torch.equal(ema[name], p2.models["ema"][name]), name
    assert torch.equal(ema["h2.weight"][:, :4], p1.models["ema"]["h2.weight"])
    assert torch.equal(ema["h2.weight"][:, 4:], fresh_ema["h2.weight"][:, 4:])
    for name in ("h2.bias", "head.weight", "head.bias"):
        assert torch.equal(ema[name], p1.models["ema"][name]), name
    # Adam moments: reset for the transplanted layer and for the resized tensor, kept elsewhere
    opt = child.optim["model"]
    assert set(opt) == {"h2.bias", "head.weight", "head.bias"}
    for name in opt:
        for k in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(opt[name][k], p1.optim["model"][name][k]), name
    assert record.details["tensors_adapted"] == 2  # model:h2.weight and ema:h2.weight
    assert_strict_load(genome, child)


def test_narrower_donor_layer_is_shrink_perturbed_on_the_overlap_and_the_fixed_head_sliced(task):
    p1, p2 = trained(task, BIG, 1), trained(task, SMALL, 2)
    genome, child, record = mix(task, (BIG, p1), (SMALL, p2), rng_marking(task, ["w2"]), p_donor=0.5)
    assert genome == {"w1": 8, "w2": 6, "act": "tanh"}
    fresh = task.init_state(genome, record.seed)
    m, f, a, b = child.models["model"], fresh.models["model"], p1.models["model"], p2.models["model"]
    # the donor's h2 was (6, 4) after its own w1 = 4; the child's w1 is 8
    assert m["h2.weight"].shape == (6, 8)
    assert torch.equal(m["h2.weight"][:, :4], 0.4 * b["h2.weight"] + 0.1 * f["h2.weight"][:, :4])
    assert torch.equal(m["h2.weight"][:, 4:], f["h2.weight"][:, 4:])
    assert torch.equal(m["h2.bias"], 0.4 * b["h2.bias"] + 0.1 * f["h2.bias"])
    # the head, owned by no gene, now reads 6 inputs instead of 10: the primary's first 6 columns
    assert torch.equal(m["head.weight"], a["head.weight"][:, :6])
    for name in ("head.bias", "h1.weight", "h1.bias"):
        assert torch.equal(m[name], a[name]), name
    ema, fresh_ema = child.models["ema"], fresh.models["ema"]
    assert torch.equal(ema["h2.weight"][:, :4], p2.models["ema"]["h2.weight"])
    assert torch.equal(ema["h2.weight"][:, 4:], fresh_ema["h2.weight"][:, 4:])
    assert torch.equal(ema["h2.bias"], p2.models["ema"]["h2.bias"])
    assert torch.equal(ema["head.weight"], p1.models["ema"]["head.weight"][:, :6])
    assert set(child.optim["model"]) == {"h1.weight", "h1.bias", "head.bias"}
    assert_strict_load(genome, child)


def test_donor_moments_are_taken_only_where_the_shape_is_unchanged(task):
    p1, p2 = trained(task, BIG, 1), trained(task, SMALL, 2)
    genome, child, _ = mix(task, (BIG, p1), (SMALL, p2), rng_marking(task, ["w2"]), p_donor=0.5, donor_moments=True)
    opt = child.optim["model"]
    assert torch.equal(opt["h2.bias"]["exp_avg"], p2.optim["model"]["h2.bias"]["exp_avg"])
    assert "h2.weight" not in opt and "head.weight" not in opt
    # the child trains with the moments it kept and fresh ones for the rest
    task.train_step(genome, child, 0, 5)


@pytest.mark.parametrize(("lam", "gam"), [(1.0, 0.0), (0.0, 1.0), (0.4, 0.0)])
def test_special_cases_of_shrink_perturb_with_a_width_change(task, lam, gam):
    p1, p2 = trained(task, BIG, 1), trained(task, SMALL, 2)
    genome, child, record = mix(task, (BIG, p1), (SMALL, p2), rng_marking(task, ["w2"]), p_donor=0.5, lam=lam, gam=gam)
    f = task.init_state(genome, record.seed).models["model"]["h2.weight"]
    donor = p2.models["model"]["h2.weight"]
    w = child.models["model"]["h2.weight"]
    expected = {(1.0, 0.0): donor, (0.0, 1.0): f[:, :4], (0.4, 0.0): 0.4 * donor}[(lam, gam)]
    assert torch.equal(w[:, :4], expected)
    assert torch.equal(w[:, 4:], f[:, 4:])


def test_same_width_children_are_exactly_what_they_were(task):
    # where no shape changes, the fresh model only perturbs: nothing is sliced or dropped
    other = {**SMALL, "act": "tanh"}
    p1, p2 = trained(task, SMALL, 1), trained(task, other, 2)
    genome, child, record = mix(task, (SMALL, p1), (other, p2), rng_marking(task, ["w1", "act"]), p_donor=0.5)
    fresh = task.init_state(genome, record.seed)
    assert record.details["tensors_adapted"] == 0
    for name, t in child.models["model"].items():
        if name.startswith("h1."):
            assert torch.equal(t, shrink_perturb(p2.models["model"][name], fresh.models["model"][name], 0.4, 0.1))
        else:
            assert torch.equal(t, p1.models["model"][name]), name
    assert set(child.optim["model"]) == {"h2.weight", "h2.bias", "head.weight", "head.bias"}


def test_fit_to_copies_the_overlap_and_takes_the_rest_fresh():
    source = torch.arange(24.0).reshape(2, 3, 4)
    fresh = -torch.ones(3, 2, 5)
    out = fit_to(source, fresh)
    assert out.shape == fresh.shape
    assert torch.equal(out[:2, :2, :4], source[:, :2, :])
    mask = torch.ones_like(out, dtype=torch.bool)
    mask[:2, :2, :4] = False
    assert (out[mask] == -1).all()
    # a different number of dimensions has no overlap: the fresh tensor, as it is
    assert torch.equal(fit_to(torch.ones(4, 3), fresh), fresh)
    # equal shapes: exactly the combination, no slicing (bit-identical shrink-perturb)
    d, f = torch.randn(5, 3), torch.randn(5, 3)
    sp = lambda x, y: shrink_perturb(x, y, 0.4, 0.1)
    assert torch.equal(fit_to(d, f, sp), shrink_perturb(d, f, 0.4, 0.1))
    # integer and boolean tensors of another shape (an index, a mask) are taken fresh: a slice
    # of an index built for 3 channels may point past the end of 2
    index = fit_to(torch.tensor([2, 1, 0]), torch.tensor([1, 0]), sp)
    assert index.dtype == torch.long and index.tolist() == [1, 0]
    mask = fit_to(torch.tensor([True, False, True]), torch.tensor([False, True]))
    assert mask.dtype == torch.bool and mask.tolist() == [False, True]
    # of the same shape they are copied, never shrink-perturbed
    assert fit_to(torch.tensor([3, 4]), torch.zeros(2, dtype=torch.long), sp).tolist() == [3, 4]
    # the arguments are never edited
    assert (fresh == -1).all() and torch.equal(source, torch.arange(24.0).reshape(2, 3, 4))


def test_missing_tensors_come_from_fresh_and_unknown_ones_are_dropped(task):
    state = MemberState(
        models={"model": {"a": torch.ones(2, 2), "gone": torch.ones(3)}, "ema": {"a": 2 * torch.ones(2, 2)}},
        optim={"model": {"a": {"exp_avg": torch.ones(2, 2)}, "gone": {"exp_avg": torch.ones(3)}}},
    )
    # the fresh state has no EMA: a shadow is matched against the fresh copy of its source
    fresh = MemberState(models={"model": {"a": torch.zeros(2, 3), "new": torch.full((4,), 7.0)}})
    adapted = adapt_to_architecture(task, state, fresh)
    assert sorted(adapted) == ["ema:a", "ema:new", "model:a", "model:gone", "model:new"]
    m = state.models["model"]
    assert set(m) == {"a", "new"} and torch.equal(m["new"], torch.full((4,), 7.0))
    assert torch.equal(m["a"], torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]]))
    assert torch.equal(state.models["ema"]["a"][:, :2], 2 * torch.ones(2, 2))
    assert state.optim["model"] == {}
    # a state that already fits is left alone, tensor objects included
    before = dict(state.models["model"])
    assert adapt_to_architecture(task, state, fresh) == []
    assert all(state.models["model"][k] is before[k] for k in before)


def test_architecture_mutation_of_a_width_gene_adapts_its_consumer(task):
    parent = trained(task, SMALL, 1)
    for seed in range(100):
        genome, child, record = mutate(task, (SMALL, parent), np.random.default_rng(seed), branch="architecture")
        if record.details["gene"] == "w1":
            break
    assert genome == {**SMALL, "w1": 8}
    fresh = task.init_state(genome, record.seed)
    for key in ("model", "ema"):
        m, f, p = child.models[key], fresh.models[key], parent.models[key]
        for name in ("h1.weight", "h1.bias"):
            assert torch.equal(m[name], f[name]), (key, name)
        assert torch.equal(m["h2.weight"][:, :4], p["h2.weight"])
        assert torch.equal(m["h2.weight"][:, 4:], f["h2.weight"][:, 4:])
        for name in ("h2.bias", "head.weight", "head.bias"):
            assert torch.equal(m[name], p[name]), (key, name)
    assert set(child.optim["model"]) == {"h2.bias", "head.weight", "head.bias"}
    assert record.details["tensors_adapted"] == 2
    assert_strict_load(genome, child)


def test_architecture_mutation_of_a_weightless_gene_keeps_every_tensor(task):
    parent = trained(task, SMALL, 1)
    for seed in range(100):
        genome, child, record = mutate(task, (SMALL, parent), np.random.default_rng(seed), branch="architecture")
        if record.details["gene"] == "act":
            break
    assert genome == {**SMALL, "act": "tanh"} and record.details["tensors_adapted"] == 0
    for key in ("model", "ema"):
        assert all(torch.equal(t, parent.models[key][k]) for k, t in child.models[key].items())
    assert set(child.optim["model"]) == set(parent.optim["model"])


def test_random_children_of_different_widths_always_load_strictly_and_train(task):
    rng = np.random.default_rng(0)
    genomes = [SMALL, BIG, {"w1": 4, "w2": 10, "act": "tanh"}, {"w1": 8, "w2": 6, "act": "relu"}]
    states = [trained(task, g, i + 1) for i, g in enumerate(genomes)]
    for trial in range(12):
        i, j = rng.choice(4, size=2, replace=False)
        genome, child, _ = mix(task, (genomes[i], states[i]), (genomes[j], states[j]), rng, p_donor=0.5)
        assert_strict_load(genome, child)
        child, metrics = task.train_step(genome, child, 0, trial)
        assert np.isfinite(metrics["loss"])


@pytest.mark.parametrize("algorithm", ["pbtnas", "mutation"])
def test_a_whole_search_over_widths_runs(monkeypatch, tmp_path, algorithm):
    from pbtnas import tasks
    from pbtnas.config import config_from_dict
    from pbtnas.engine.runner import Runner
    from pbtnas.rundir.store import RunStore

    monkeypatch.setitem(tasks.TASKS, "width-toy", "test_width_genes:WidthTask")
    config = config_from_dict(
        {"task": {"name": "width-toy"}, "algorithm": algorithm, "population": 8, "steps": 4, "seed": 1, "p_donor": 0.5, "backend": "inprocess"}
    )
    summary = Runner(config, tmp_path / "run", progress=False).start().run()
    assert summary["steps_done"] == 4 and np.isfinite(summary["final_metric"])
    children = list(RunStore(tmp_path / "run").iter_events("child_created"))
    assert len(children) == 6
    if algorithm == "pbtnas":  # this seed does breed children whose widths differ from the primary's
        assert any(c["tensors_adapted"] > 0 for c in children)
