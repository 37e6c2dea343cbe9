"""Small user tasks written with the high-level API, good and broken, for the custom-task tests.
Each broken one breaks exactly one rule that ``check_task`` or the task loader must name."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import pbtnas
from pbtnas import Gene, SearchSpace, hyperparameter

X = torch.linspace(-1, 1, 64).unsqueeze(1)
Y = torch.sin(3 * X)


class Net(nn.Module):
    def __init__(self, genome, block_name="block"):
        super().__init__()
        self.inp = nn.Linear(1, 8)
        block = nn.Linear(8, 8) if genome["block"] == "linear" else nn.Identity()
        setattr(self, block_name, block)
        self.block_name = block_name
        self.head = nn.Linear(8, 1)

    def forward(self, x):
        return self.head(torch.tanh(getattr(self, self.block_name)(torch.tanh(self.inp(x)))))


class Good(pbtnas.TorchTask):
    """A valid task with a hyperparameter gene; it records what its optimizer saw."""

    space = SearchSpace([Gene("block", ["linear", "skip"]), hyperparameter("lr", [1e-3, 1e-2])])
    fitness_name = "neg_mse"

    def build(self, genome):
        return Net(genome)

    def optimizers(self, member):
        return torch.optim.Adam(member.model.parameters(), lr=member.genome["lr"])

    def train(self, member):
        opt = member.optimizer
        member.extra["lr_seen"] = opt.param_groups[0]["lr"]
        first = next(iter(member.model.parameters()))
        member.extra["adam_steps_before"] = int(opt.state[first]["step"]) if first in opt.state else 0
        loss = F.mse_loss(member.model(X), Y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss}

    def evaluate(self, member):
        return -F.mse_loss(member.model(X), Y).item()

    def example_input(self, batch):
        return X[:batch]


class MisspeltPath(Good):
    def build(self, genome):
        return Net(genome, block_name="blok")


class Overlapping(Good):
    space = SearchSpace([Gene("block", ["linear", "skip"]), Gene("inner", ["a", "b"])])
    module_paths = {"block": "block", "inner": "block"}


class UnownedLayer(Good):
    """The gene is declared weightless but its option adds a layer."""

    space = SearchSpace([Gene("block", ["linear", "skip"], owns_weights=False), hyperparameter("lr", [1e-3])])


class NotDeterministic(Good):
    calls = 0

    def evaluate(self, member):
        NotDeterministic.calls += 1
        return float(NotDeterministic.calls)


class EvaluatesToADict(Good):
    """Returns its metrics from evaluate() instead of one fitness number."""

    def evaluate(self, member):
        return {"mse": -super().evaluate(member)}


#: drawn when the module is imported, without a seed: different in every process
NOISE = torch.from_numpy(np.random.default_rng().normal(size=(64, 1))).float()


class DataDrawnAtImport(Good):
    """Evaluates on data drawn at import without a seed (every worker sees other data)."""

    def evaluate(self, member):
        return -F.mse_loss(member.model(X), Y + NOISE).item()


class FailsInTraining(Good):
    """Passes the checks (which skip training at a run's start) and raises in every train()."""

    def train(self, member):
        raise ValueError("Invalid learning rate: -1.0")


class NotATask(nn.Module):
    pass


class BadSpace(Good):
    space = [Gene("block", ["linear", "skip"])]


class MissingTrain(pbtnas.TorchTask):
    space = SearchSpace([Gene("block", ["linear", "skip"])])

    def build(self, genome):
        return Net(genome)

    def evaluate(self, member):
        return 0.0


class TouchesGlobalRng(pbtnas.Task):
    """A low-level task whose evaluate draws from torch's global generator."""

    Options = pbtnas.tasks.torch_task.TorchOptions

    def __init__(self, options=None):
        super().__init__(options)
        self.inner = Good()
        self.space = self.inner.space

    def gene_modules(self, gene):
        return self.inner.gene_modules(gene)

    def init_state(self, genome, seed):
        return self.inner.init_state(genome, seed)

    def train_step(self, genome, state, step, seed):
        return self.inner.train_step(genome, state, step, seed)

    def evaluate(self, genome, state, seed):
        torch.rand(1)
        return 0.0

    def final_evaluate(self, genome, state, seed):
        return {"fitness": 0.0}

    def build_module(self, genome, state):
        return self.inner.build_module(genome, state)


class Single(Good):
    """One architecture for every member (so every member can go into a model soup)."""

    space = SearchSpace([Gene("block", ["linear"]), hyperparameter("lr", [1e-2])])


class AlwaysDiverges(Good):
    """Every member's loss is NaN from the first step."""

    def train(self, member):
        return {"loss": float("nan")}


class _PidDataset(torch.utils.data.Dataset):
    """(x, y, pid of the process that loaded the item)."""

    def __len__(self):
        return len(X)

    def __getitem__(self, i):
        import os

        return X[i], Y[i], os.getpid()


class LoaderWorkers(Good):
    """Trains through a ``DataLoader`` with worker processes of its own, as many users' loops do."""

    def train(self, member):
        import os

        loader = torch.utils.data.DataLoader(_PidDataset(), batch_size=16, shuffle=True, num_workers=2, generator=member.generator)
        pids = set()
        for x, y, pid in loader:
            pids.update(pid.tolist())
            loss = F.mse_loss(member.model(x), y)
            member.optimizer.zero_grad()
            loss.backward()
            member.optimizer.step()
        member.extra["loader_processes"] = len(pids - {os.getpid()})
        return {"loss": loss}


class Compiled(Good):
    """``build`` returns a ``torch.compile``d network, as many modern training scripts do."""

    def build(self, genome):
        # the eager backend: dynamo traces, nothing is code-generated (fast, no C++ compiler)
        return torch.compile(Net(genome), backend="eager")

    def train(self, member):
        member.extra["compiled"] = int(hasattr(member.model, "_orig_mod"))
        return super().train(member)


class LazyInput(Good):
    """Its first layer learns its input size on first use (``nn.LazyLinear``)."""

    def build(self, genome):
        net = Net(genome)
        net.inp = nn.LazyLinear(8)
        return net


class LazyWithoutExample(LazyInput):
    """Lazy layers, and no ``example_input`` to initialise them with."""

    example_input = None


class WithMetrics(Good):
    """Declares a metric besides the fitness and returns both from evaluate (several objectives)."""

    metric_names = ("abs_error",)

    def evaluate(self, member):
        out = member.model(X)
        return {"fitness": -F.mse_loss(out, Y).item(), "abs_error": (out - Y).abs().mean().item()}


class WithoutExampleInput(Good):
    """Has no example input: objectives that need a forward pass are refused."""

    example_input = None


class MissingMetric(WithMetrics):
    """Declares a metric its evaluate does not return."""

    def evaluate(self, member):
        return {"fitness": -F.mse_loss(member.model(X), Y).item()}


class Reported(Good):
    """Says what its report shows (its report hints) and draws a sample grid (an optional hook)."""

    def report_hints(self):
        return pbtnas.ReportHints(headline="sine regression with 64 points", metrics_title="Losses of the sine fit")

    def sample_grid(self, genome, state, path, seed):
        from PIL import Image

        Image.new("L", (2, 2)).save(path)
        return path


class WrongHints(Good):
    """report_hints returns a plain dict instead of a ReportHints."""

    def report_hints(self):
        return {"headline": "x"}
