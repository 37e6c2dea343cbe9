"""A simulated-training task for scheduler and backend benchmarks (and fast fault tests).

A step *sleeps* for a time set by the architecture, so step times are uneven the way real
networks' are (a big cell trains slower than a small one), while the CPU stays free: dozens of
members fit on two cores. A tiny real model (an MLP with searchable hidden layers) is trained
for a few batches on a fixed synthetic regression problem, so fitness depends on the genome
and on inherited weights, and mixing moves real tensors.

Step time of a genome: ``step_seconds * (1 - unevenness / 2 + unevenness * r)`` where
``r`` in [0, 1] is the genome's relative cost (sum of its layers' costs over the largest sum).
With ``unevenness`` 0 every step takes ``step_seconds``; with 1.5 the fastest architecture takes
a quarter and the slowest 1.75 times that. ``jitter`` adds seeded noise per step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from pbtnas.errors import MemberDiverged
from pbtnas.search.space import Gene, Genome, SearchSpace
from pbtnas.search.state import MemberState, capture_optimizer, load_weights, restore_optimizer, state_dict_cpu
from pbtnas.tasks.base import Task, doc
from pbtnas.tasks.memory import F32, I64, MemoryNeed

OPS = ("identity", "linear", "mlp2", "mlp4")
COST = {"identity": 0.0, "linear": 1.0, "mlp2": 2.0, "mlp4": 4.0}
ACTIVATIONS = ("relu", "tanh")


@dataclass
class SimulatedOptions:
    """Options of the simulated task (config section ``task``)."""

    layers: int = doc("searchable hidden layers (2 genes each: op and activation)", 4, ge=1)
    width: int = doc("hidden width of the tiny MLP", 8, ge=1)
    step_seconds: float = doc("mean simulated step time in seconds (the sleep)", 0.2, ge=0)
    unevenness: float = doc("spread of step times across architectures, in [0, 2)", 1.5, ge=0, lt=2)
    jitter: float = doc("seeded relative noise on each step's time, in [0, 1)", 0.0, ge=0, lt=1)
    batches_per_step: int = doc("real training batches of the tiny model per step", 4, ge=1)
    batch_size: int = doc("batch size of the tiny model", 32, ge=1)
    lr: float = doc("Adam learning rate of the tiny model", 1e-2, gt=0)
    data_seed: int = doc("seed of the fixed synthetic data set", 7, ge=0)
    device: str = doc("torch device (the model is tiny: cpu)", "cpu")


class _Block(nn.Module):
    def __init__(self, op: str, width: int):
        super().__init__()
        self.body: nn.Module | None
        if op == "linear":
            self.body = nn.Linear(width, width)
        elif op in ("mlp2", "mlp4"):
            hidden = width * (2 if op == "mlp2" else 4)
            self.body = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, width))
        else:
            self.body = None  # identity

    def forward(self, x):
        return x if self.body is None else x + self.body(x)


class SimNet(nn.Module):
    """Stem -> searchable residual blocks with searchable activations -> head."""

    def __init__(self, genome: Genome, layers: int, width: int, in_dim: int = 6):
        super().__init__()
        self.stem = nn.Linear(in_dim, width)
        self.blocks = nn.ModuleList(_Block(genome[f"layer{i}.op"], width) for i in range(layers))
        self.acts = [genome[f"layer{i}.act"] for i in range(layers)]
        self.head = nn.Linear(width, 1)

    def forward(self, x):
        x = self.stem(x)
        for block, act in zip(self.blocks, self.acts):
            x = block(x)
            x = torch.relu(x) if act == "relu" else torch.tanh(x)
        return self.head(x).squeeze(-1)


class SimulatedTask(Task):
    """Sleeps an architecture-dependent time per step; fitness is a tiny MLP's negative val MSE."""

    Options = SimulatedOptions
    fitness_name = "neg_val_mse"
    final_metric_name = "neg_test_mse"
    final_metric_higher_is_better = True  # a negated error
    default_final_selection = "best-ever"

    def __init__(self, options: SimulatedOptions):
        super().__init__(options)  # each option's range: its declaration in SimulatedOptions
        genes = []
        for i in range(options.layers):
            genes.append(Gene(f"layer{i}.op", OPS, True, f"hidden block {i}"))
            genes.append(Gene(f"layer{i}.act", ACTIVATIONS, False, f"activation after block {i}"))
        self.space = SearchSpace(genes, name=f"simulated-{options.layers}layers")
        self._data: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None

    @classmethod
    def memory_needs(cls, options: SimulatedOptions) -> list[MemoryNeed]:
        # per layer: two genes in the space (~0.6 kB measured) and at least an empty block
        # module (~1 kB); per sample: its index, its 6 inputs and the stem's activations
        o = options
        return [
            MemoryNeed(("layers",), o.layers * 1600, "its search space and network"),
            MemoryNeed(("batch_size",), o.batch_size * (I64 + F32 * (6 + o.width)), "a training batch"),
            MemoryNeed(("width",), 3 * F32 * 7 * o.width, "the stem and head weights with Adam's moments"),
        ]

    # -- data: a fixed nonlinear regression problem --------------------------------------------
    @property
    def data(self):
        if self._data is None:
            rng = np.random.default_rng(self.options.data_seed)
            x = rng.normal(size=(1200, 6)).astype(np.float32)
            w = rng.normal(size=(6,)).astype(np.float32)
            y = (np.sin(x @ w) + 0.5 * np.tanh(x[:, 0] * x[:, 1]) + 0.05 * rng.normal(size=1200)).astype(np.float32)
            t = torch.from_numpy
            self._data = {"train": (t(x[:800]), t(y[:800])), "val": (t(x[800:1000]), t(y[800:1000])), "test": (t(x[1000:]), t(y[1000:]))}
        return self._data

    def step_time(self, genome: Genome, seed: int | None = None) -> float:
        """Seconds one step of ``genome`` sleeps (the simulated training cost)."""
        o = self.options
        r = sum(COST[genome[f"layer{i}.op"]] for i in range(o.layers)) / (COST["mlp4"] * o.layers)
        seconds = o.step_seconds * (1.0 - o.unevenness / 2.0 + o.unevenness * r)
        if o.jitter and seed is not None:
            seconds *= 1.0 + o.jitter * float(np.random.default_rng(seed).uniform(-1.0, 1.0))
        return max(0.0, seconds)

    # -- the Task interface ----------------------------------------------------------------------
    def gene_modules(self, gene: str) -> dict[str, list[str]]:
        if not self.space[gene].owns_weights:
            return {}
        i = int(gene.split(".")[0][len("layer") :])
        return {"model": [f"blocks.{i}"]}

    def _net(self, genome: Genome) -> SimNet:
        return SimNet(genome, self.options.layers, self.options.width)

    def init_state(self, genome: Genome, seed: int) -> MemberState:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = self._net(genome)
        return MemberState(models={"model": state_dict_cpu(net)}, optim={"model": {}}, extra={"steps": 0})

    def _load(self, genome: Genome, state: MemberState) -> SimNet:
        with torch.random.fork_rng(devices=[]):  # the initial weights are overwritten: leave torch's RNG alone
            net = self._net(genome)
        load_weights(net, state.models["model"])
        return net

    def example_input(self, batch: int) -> torch.Tensor:
        """A batch of test inputs (for the ``flops`` and ``latency_ms`` objectives)."""
        return self.data["test"][0][:batch].clone()

    def build_module(self, genome: Genome, state: MemberState) -> nn.Module:
        return self._load(genome, state).eval()

    def train_step(self, genome: Genome, state: MemberState, step: int, seed: int):
        started = time.perf_counter()
        net = self._load(genome, state).train()
        opt = torch.optim.Adam(net.parameters(), lr=self.options.lr)
        restore_optimizer(opt, net, state.optim.get("model", {}))
        x, y = self.data["train"]
        gen = torch.Generator().manual_seed(seed)
        losses = []
        for _ in range(self.options.batches_per_step):
            idx = torch.randint(len(x), (self.options.batch_size,), generator=gen)
            loss = F.mse_loss(net(x[idx]), y[idx])
            if not torch.isfinite(loss):
                raise MemberDiverged(f"loss became {loss.item()} at step {step}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        # The simulated cost: sleep whatever the step time leaves after the real (tiny) work.
        target = self.step_time(genome, seed)
        time.sleep(max(0.0, target - (time.perf_counter() - started)))
        new = MemberState(
            models={"model": state_dict_cpu(net)},
            optim={"model": capture_optimizer(opt, net)},
            extra={**state.extra, "steps": state.extra.get("steps", 0) + 1},
        )
        return new, {"train_loss": float(np.mean(losses)), "simulated_seconds": target}

    @torch.no_grad()
    def _mse(self, genome: Genome, state: MemberState, split: str) -> float:
        x, y = self.data[split]
        out = self._load(genome, state).eval()(x)
        if not torch.isfinite(out).all():
            return float("inf")
        return float(F.mse_loss(out, y))

    def evaluate(self, genome: Genome, state: MemberState, seed: int) -> float:
        return -self._mse(genome, state, "val")

    def final_evaluate(self, genome: Genome, state: MemberState, seed: int) -> dict[str, float]:
        return {"neg_test_mse": -self._mse(genome, state, "test"), "neg_val_mse": -self._mse(genome, state, "val")}
