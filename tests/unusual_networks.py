"""A user network with what no preset has: an embedding tied to the output head, a choice between
LSTM and GRU, a depth gene that owns a ``ModuleList``, a frozen layer, spectral- and weight-norm
parametrisations, and integer and boolean buffers inside a transplanted block. The tests in
``test_unusual_networks.py`` search, mix, resume and export it."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrizations

import pbtnas
from pbtnas import Gene, SearchSpace, hyperparameter

VOCAB = 16
_DATA = torch.randint(VOCAB, (240, 10), generator=torch.Generator().manual_seed(0))
_DATA[:, 1::2] = (_DATA[:, 0::2] + 1) % VOCAB  # every second token follows from the one before
TRAIN, VAL = _DATA[:200], _DATA[200:]


class Masked(nn.Module):
    """A block with integer and boolean buffers (an index, a mask, a counter)."""

    def __init__(self, width: int):
        super().__init__()
        self.lin = nn.Linear(width, width)
        self.register_buffer("order", torch.arange(width).flip(0))
        self.register_buffer("mask", torch.arange(width) % 3 != 0)
        self.register_buffer("calls", torch.zeros((), dtype=torch.int32))

    def forward(self, x):
        if self.training:
            self.calls += 1
        return self.lin(x)[..., self.order] * self.mask


class TiedLM(nn.Module):
    def __init__(self, genome):
        super().__init__()
        width = genome["width"]
        self.embed = nn.Embedding(VOCAB, width)
        self.frozen = nn.Linear(width, width)
        self.frozen.requires_grad_(False)
        self.rnn = {"lstm": nn.LSTM(width, width, batch_first=True), "gru": nn.GRU(width, width, batch_first=True)}[genome["rnn"]]
        self.mixer = {
            "masked": Masked(width),
            "spectral": parametrizations.spectral_norm(nn.Linear(width, width)),
            "weightnorm": parametrizations.weight_norm(nn.Linear(width, width)),
        }[genome["mixer"]]
        self.layers = nn.ModuleList(nn.Linear(width, width) for _ in range(genome["layers"]))
        self.head = nn.Linear(width, VOCAB, bias=False)
        self.head.weight = self.embed.weight  # tied

    def forward(self, tokens):
        hidden, _ = self.rnn(self.frozen(self.embed(tokens)))
        hidden = hidden + torch.relu(self.mixer(hidden))
        for layer in self.layers:
            hidden = hidden + torch.relu(layer(hidden))
        return self.head(hidden)


class TiedLanguageModel(pbtnas.TorchTask):
    """Next-token prediction on generated sequences (fitness: minus the validation loss)."""

    space = SearchSpace(
        [
            Gene("width", [8, 12], owns_weights=False),  # a width: every layer adapts to it
            Gene("rnn", ["lstm", "gru"]),
            Gene("mixer", ["masked", "spectral", "weightnorm"]),
            Gene("layers", [0, 1, 2]),  # owns the whole ModuleList
            hyperparameter("lr", [3e-3, 1e-2]),
        ]
    )
    fitness_name = "neg_val_loss"

    def build(self, genome):
        return TiedLM(genome)

    def optimizers(self, member):
        return torch.optim.Adam([p for p in member.model.parameters() if p.requires_grad], lr=member.genome["lr"])

    def _loss(self, model, tokens):
        return F.cross_entropy(model(tokens[:, :-1]).reshape(-1, VOCAB), tokens[:, 1:].reshape(-1))

    def train(self, member):
        for _ in range(6):
            batch = TRAIN[torch.randint(len(TRAIN), (16,), generator=member.generator)]
            loss = self._loss(member.model, batch)
            member.optimizer.zero_grad()
            loss.backward()
            member.optimizer.step()
        return {"loss": loss.item()}

    def evaluate(self, member):
        return -self._loss(member.model, VAL).item()

    def example_input(self, batch):
        return VAL[:batch, :-1]
