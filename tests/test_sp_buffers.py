"""The ``sp_buffers`` option: shrink-perturb every floating tensor of a transplanted layer
(``all``, the paper's choice) or its learnable parameters only, copying buffers (``parameters``).

The toy task's gene ``l0`` owns ``Linear -> BatchNorm1d``, whose running statistics are buffers.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from run_helpers import trained_for
from torch import nn
from torch.nn.utils import spectral_norm
from torch.nn.utils.parametrizations import spectral_norm as parametrized_spectral_norm
from toy_task import ToyTask

from pbtnas.config import RunConfig, config_from_dict
from pbtnas.errors import ConfigError
from pbtnas.search.algorithms import Mixing, build_operator
from pbtnas.search.operators import mix, transplant

G1 = {"l0": "linear", "l1": "narrow", "act": "relu"}
G2 = {"l0": "linear", "l1": "wide", "act": "tanh"}
STATS = ("l0.1.running_mean", "l0.1.running_var")
PARAMETERS = ("l0.0.weight", "l0.0.bias", "l0.1.weight", "l0.1.bias")


@pytest.fixture()
def task():
    return ToyTask()


def trained(task, genome, seed, steps=3):
    return trained_for(task, genome, seed, steps, distinct_shadow=True)


def sp(donor, fresh):
    return 0.4 * donor + 0.1 * fresh


def test_default_is_buffer_names_exactly_torchs_standard_buffers(task):
    net = nn.Sequential(
        nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)),
        nn.Conv2d(2, 2, 3),
        nn.BatchNorm2d(2),
        nn.LayerNorm(4),
        nn.InstanceNorm1d(4, track_running_stats=True),
        spectral_norm(nn.Linear(4, 4)),
        parametrized_spectral_norm(nn.Conv2d(2, 2, 1)),
    )
    names = set(net.state_dict())
    buffers = set(dict(net.named_buffers())) & names
    assert {n for n in names if task.is_buffer("model", n)} == buffers
    # the spectral-norm vectors of both torch APIs are among them
    assert {"5.weight_u", "5.weight_v", "6.parametrizations.weight.0._u", "6.parametrizations.weight.0._v"} <= buffers


@pytest.mark.parametrize("sp_buffers", ["all", "parameters"])
def test_weights_are_shrink_perturbed_and_statistics_only_under_all(task, sp_buffers):
    p1, p2 = trained(task, G1, 1), trained(task, G2, 2)
    child, fresh = p1.clone(), task.init_state(G1, 5)
    transplant(task, child, p2, fresh, ["l0"], 0.4, 0.1, sp_buffers=sp_buffers)
    m, d, f = child.models["model"], p2.models["model"], fresh.models["model"]
    for name in PARAMETERS:
        assert torch.equal(m[name], sp(d[name], f[name])), name
    for name in STATS:
        expected = sp(d[name], f[name]) if sp_buffers == "all" else d[name]
        assert torch.equal(m[name], expected), name
    if sp_buffers == "parameters":  # bit for bit, not merely equal in value
        for name in STATS:
            assert m[name].numpy().tobytes() == d[name].numpy().tobytes()
    # the integer counter is copied either way; the shadow takes the donor's tensors unchanged
    assert m["l0.1.num_batches_tracked"].dtype == torch.long
    assert int(m["l0.1.num_batches_tracked"]) == int(d["l0.1.num_batches_tracked"]) == 3
    for name in STATS + PARAMETERS:
        assert torch.equal(child.models["ema"][name], p2.models["ema"][name]), name
    # layers of unmarked genes stay the primary's
    assert torch.equal(m["stem.weight"], p1.models["model"]["stem.weight"])


def test_a_task_that_overrides_is_buffer_decides(task):
    class AffineAsBuffer(ToyTask):
        def is_buffer(self, model_key, name):
            return super().is_buffer(model_key, name) or name == "l0.1.weight"

    p1, p2 = trained(task, G1, 1), trained(task, G2, 2)
    child, fresh = p1.clone(), task.init_state(G1, 5)
    transplant(AffineAsBuffer(), child, p2, fresh, ["l0"], 0.4, 0.1, sp_buffers="parameters")
    m, d, f = child.models["model"], p2.models["model"], fresh.models["model"]
    assert torch.equal(m["l0.1.weight"], d["l0.1.weight"])
    assert torch.equal(m["l0.1.bias"], sp(d["l0.1.bias"], f["l0.1.bias"]))


@pytest.mark.parametrize("sp_buffers", ["all", "parameters"])
def test_the_run_option_reaches_the_mixing_operator(task, sp_buffers):
    base = {"task": {"name": "classification"}, "p_donor": 1.0}
    config = config_from_dict({**base, "sp_buffers": sp_buffers} if sp_buffers != "all" else base)
    operator = build_operator(config)
    assert isinstance(operator, Mixing) and operator.sp_buffers == sp_buffers
    p1, p2 = trained(task, G1, 1), trained(task, G2, 2)
    genome, child, record = operator.make_child(task, (G1, p1), (G2, p2), np.random.default_rng(0))
    assert "l0" in record.genes_from_donor
    fresh = task.init_state(genome, record.seed)
    m, d, f = child.models["model"], p2.models["model"], fresh.models["model"]
    for name in STATS:
        expected = d[name] if sp_buffers == "parameters" else sp(d[name], f[name])
        assert torch.equal(m[name], expected), name
    assert torch.equal(m["l0.0.weight"], sp(d["l0.0.weight"], f["l0.0.weight"]))


def test_default_and_doc_of_the_config_field():
    field = RunConfig.__dataclass_fields__["sp_buffers"]
    assert RunConfig().sp_buffers == "all" and field.metadata["doc"]


def test_bad_value_is_one_config_error_naming_the_key_and_the_allowed_values():
    with pytest.raises(ConfigError) as err:
        config_from_dict({"task": {"name": "classification"}, "sp_buffers": "buffers"})
    message = str(err.value)
    assert "sp_buffers" in message and "'all'" in message and "'parameters'" in message and "'buffers'" in message


def test_operators_reject_an_unknown_value(task):
    p1, p2 = trained(task, G1, 1), trained(task, G2, 2)
    with pytest.raises(ValueError, match="sp_buffers"):
        mix(task, (G1, p1), (G2, p2), np.random.default_rng(0), sp_buffers="weights")
