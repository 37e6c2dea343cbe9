"""TorchTasks whose evaluations run (or do not run) forward passes in train mode, for
tests/test_check_train_mode.py (named by file path, as a user names a task file)."""

import torch
import torch.nn.functional as F
from torch import nn

import pbtnas
from pbtnas import Gene, SearchSpace

X = torch.randn(64, 4, generator=torch.Generator().manual_seed(0))
Y = X.sum(1)


class Net(nn.Module):
    def __init__(self, genome):
        super().__init__()
        self.hidden = nn.Linear(4, genome["hidden"])
        self.drop = nn.Dropout(0.5)
        self.head = nn.Linear(genome["hidden"], 1)

    def forward(self, x):
        return self.head(self.drop(torch.relu(self.hidden(x)))).squeeze(1)


class EvalMode(pbtnas.TorchTask):
    """An ordinary task: evaluates as the engine hands it the model (eval mode)."""

    space = SearchSpace([Gene("hidden", [8, 16])])
    fitness_name = "neg_mse"

    def build(self, genome):
        return Net(genome)

    def train(self, member):
        loss = F.mse_loss(member.model(X), Y)
        member.optimizer.zero_grad()
        loss.backward()
        member.optimizer.step()
        return {"loss": loss.item()}

    def evaluate(self, member):
        # a module made here is in train mode from birth and behaves the same in both: not counted
        return -F.mse_loss(nn.Flatten(0)(member.model(X)), Y).item()


class DropoutInEvaluate(EvalMode):
    """The mistake: evaluate switches the model to train mode, so dropout scores every member."""

    def evaluate(self, member):
        member.model.train()
        return -F.mse_loss(member.model(X), Y).item()


class MonteCarloDropout(DropoutInEvaluate):
    """The same, on purpose (Monte Carlo dropout), and declared."""

    evaluates_in_train_mode = True


class DropoutInFinalEvaluate(EvalMode):
    def final_evaluate(self, member):
        member.model.drop.train()
        return {"neg_mse": -F.mse_loss(member.model(X), Y).item()}


class DropoutInSelect(EvalMode):
    def select(self, member):
        member.model.train()
        return -F.mse_loss(member.model(X), Y).item()
