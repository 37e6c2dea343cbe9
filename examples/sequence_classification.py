"""Search a 1-D CNN + recurrent network that tells noisy waveforms apart, with PBT-NAS.

The data are made here: 2,400 sequences of 64 steps, each a sine, square, triangle or sawtooth
wave of random frequency, phase and amplitude, with noise. Genes: two convolution layers (kind and
kernel), the recurrent layer (GRU or LSTM, 16 or 32 units: a width gene, so the classifier that
reads it is adapted on inheritance) and the dropout rate (a hyperparameter gene)::

    python examples/sequence_classification.py --out runs/waves
"""

import argparse

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import pbtnas
from pbtnas import Gene, SearchSpace, hyperparameter

# -- data: four waveforms, generated with a fixed seed --------------------------------------------
rng = np.random.default_rng(0)
t = np.linspace(0, 1, 64)
labels = rng.integers(4, size=2400)
phase = 2 * np.pi * (rng.uniform(1, 4, (2400, 1)) * t + rng.uniform(0, 1, (2400, 1)))
waves = np.stack([np.sin(phase), np.sign(np.sin(phase)), 2 / np.pi * np.arcsin(np.sin(phase)), (phase / np.pi) % 2 - 1])[labels, np.arange(2400)]
series = waves * rng.uniform(0.5, 1.5, (2400, 1)) + rng.normal(0, 0.6, (2400, 64))
X, Y = torch.tensor(series[:, None, :], dtype=torch.float32), torch.tensor(labels)
train, val, test = torch.arange(0, 1600), torch.arange(1600, 2000), torch.arange(2000, 2400)

CONVS = {"conv3": (3, 1), "conv5": (5, 1), "conv7": (7, 1), "dilated3": (3, 2)}


def conv(kind, c_in, c_out=16):
    kernel, dilation = CONVS[kind]
    return nn.Conv1d(c_in, c_out, kernel, padding=dilation * (kernel - 1) // 2, dilation=dilation)


class WaveNet(nn.Module):
    """Submodules named after their genes: conv1, conv2, rnn."""

    def __init__(self, genome):
        super().__init__()
        self.conv1 = conv(genome["conv1"], 1)
        self.conv2 = nn.Identity() if genome["conv2"] == "none" else conv(genome["conv2"], 16)
        kind, units = genome["rnn"].split("-")
        self.rnn = (nn.GRU if kind == "gru" else nn.LSTM)(16, int(units), batch_first=True)
        self.dropout = nn.Dropout(genome["dropout"])
        self.classify = nn.Linear(int(units), 4)  # reads the rnn's width

    def forward(self, x):
        h = torch.relu(self.conv1(x))
        h = h + torch.relu(self.conv2(h))
        out, _ = self.rnn(h.transpose(1, 2))
        return self.classify(self.dropout(out[:, -1]))


class Waveforms(pbtnas.TorchTask):
    """Classify noisy waveforms; fitness is validation accuracy."""

    space = SearchSpace(
        [
            Gene("conv1", list(CONVS)),
            Gene("conv2", ["none", *CONVS]),
            Gene("rnn", ["gru-16", "gru-32", "lstm-16", "lstm-32"]),
            hyperparameter("dropout", [0.0, 0.1, 0.3]),
        ]
    )
    fitness_name = "val_accuracy"
    final_metric_name = "test_accuracy"
    final_metric_higher_is_better = True

    def build(self, genome):
        return WaveNet(genome)

    def optimizers(self, member):
        return torch.optim.Adam(member.model.parameters(), lr=3e-3)

    def train(self, member):
        for _ in range(15):
            batch = train[torch.randint(len(train), (64,), generator=member.generator)]
            loss = F.cross_entropy(member.model(X[batch]), Y[batch])
            member.optimizer.zero_grad()
            loss.backward()
            member.optimizer.step()
        return {"loss": loss.item()}

    def accuracy(self, member, split):
        return (member.model(X[split]).argmax(1) == Y[split]).float().mean().item()

    def evaluate(self, member):
        return self.accuracy(member, val)

    def final_evaluate(self, member):
        return {"test_accuracy": self.accuracy(member, test), "val_accuracy": self.accuracy(member, val)}

    def example_input(self, batch):
        return X[test[:batch]]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/waveforms")
    parser.add_argument("--population", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--workers", type=int, default=0)
    args = parser.parse_args()
    summary = pbtnas.run(Waveforms, out=args.out, population=args.population, steps=args.steps, workers=args.workers, progress=True)
    print(f"best architecture {summary['best_genome']}: test accuracy {summary['final_metric']:.3f} (chance 0.25)")
