"""A tiny real task for operator tests: two searchable linear layers (one with BatchNorm, whose
``num_batches_tracked`` is an integer tensor), a weightless activation gene, a fixed head and an
EMA shadow copy of the model."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from pbtnas.search.space import Gene, SearchSpace
from pbtnas.search.state import MemberState, capture_optimizer, restore_optimizer, state_dict_cpu
from pbtnas.tasks.base import Task, doc


@dataclass
class ToyOptions:
    width: int = doc("hidden width", 4)


class ToyNet(nn.Module):
    def __init__(self, genome, width):
        super().__init__()
        wide = {"narrow": width, "wide": 2 * width}
        self.stem = nn.Linear(3, width)
        self.l0 = nn.Sequential(nn.Linear(width, width), nn.BatchNorm1d(width)) if genome["l0"] != "none" else nn.Identity()
        self.l1 = nn.Sequential(nn.Linear(width, wide[genome["l1"]]), nn.Linear(wide[genome["l1"]], width))
        self.act = nn.ReLU() if genome["act"] == "relu" else nn.Tanh()
        self.head = nn.Linear(width, 1)

    def forward(self, x):
        return self.head(self.act(self.l1(self.act(self.l0(self.stem(x))))))


class ToyTask(Task):
    Options = ToyOptions
    shadow_models = {"ema": "model"}
    fitness_name = "neg_mse"
    final_metric_name = "neg_mse"

    def __init__(self, options=None):
        super().__init__(options or ToyOptions())
        self.space = SearchSpace(
            [
                Gene("l0", ("linear", "none")),
                Gene("l1", ("narrow", "wide")),
                Gene("act", ("relu", "tanh"), owns_weights=False),
            ],
            name="toy",
        )

    def gene_modules(self, gene):
        return {"l0": {"model": ["l0"]}, "l1": {"model": ["l1"]}}.get(gene, {})

    def init_state(self, genome, seed):
        torch.manual_seed(seed)
        net = ToyNet(genome, self.options.width)
        sd = state_dict_cpu(net)
        return MemberState(models={"model": sd, "ema": {k: v.clone() for k, v in sd.items()}}, optim={"model": {}})

    def _net(self, genome, state):
        net = ToyNet(genome, self.options.width)
        net.load_state_dict(state.models["model"], strict=True)
        return net

    def train_step(self, genome, state, step, seed):
        net = self._net(genome, state)
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        restore_optimizer(opt, net, state.optim.get("model", {}))
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(32, 3, generator=gen)
        loss = ((net(x) - x.sum(1, keepdim=True)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sd = state_dict_cpu(net)
        return MemberState(models={"model": sd, "ema": state.models["ema"]}, optim={"model": capture_optimizer(opt, net)}), {"loss": loss.item()}

    def evaluate(self, genome, state, seed):
        return 0.0

    def final_evaluate(self, genome, state, seed):
        return {"neg_mse": 0.0}

    def build_module(self, genome, state):
        return self._net(genome, state).eval()
