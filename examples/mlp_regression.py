"""Search an MLP for scikit-learn's diabetes regression with PBT-NAS.

Genes: the first hidden layer's width (a width gene: the layers that read it are adapted when a
child inherits another width), the depth of the second block (skipped, one or two layers), the
activation, and the learning rate (a hyperparameter gene). Run it::

    python examples/mlp_regression.py --out runs/mlp
    pbtnas report runs/mlp && pbtnas export runs/mlp --out mlp-best
"""

import argparse

import torch
import torch.nn.functional as F
from sklearn.datasets import load_diabetes
from torch import nn

import pbtnas
from pbtnas import Gene, SearchSpace, hyperparameter

# -- data: 442 patients, 10 features; standardised; fixed train / validation / test split ----------
X, y = (torch.tensor(a, dtype=torch.float32) for a in load_diabetes(return_X_y=True))
X, y = (X - X.mean(0)) / X.std(0), (y - y.mean()) / y.std()
order = torch.randperm(len(X), generator=torch.Generator().manual_seed(0))
train, val, test = order[:300], order[300:370], order[370:]


class MLP(nn.Module):
    """Submodules are named after the genes that own them: hidden1, block2."""

    def __init__(self, genome):
        super().__init__()
        width = genome["hidden1"]
        self.hidden1 = nn.Linear(X.shape[1], width)
        self.block2 = {
            "skip": nn.Identity(),
            "linear": nn.Linear(width, width),  # depth 0, 1 or 2
            "two-layers": nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width)),
        }[genome["block2"]]
        self.act = {"relu": nn.ReLU(), "tanh": nn.Tanh(), "gelu": nn.GELU()}[genome["act"]]
        self.head = nn.Linear(width, 1)  # reads hidden1's width: no gene owns it, inheritance adapts it

    def forward(self, x):
        return self.head(self.act(self.block2(self.act(self.hidden1(x))))).squeeze(1)


class DiabetesMLP(pbtnas.TorchTask):
    """An MLP regression searched over width, depth/skip, activation and learning rate."""

    space = SearchSpace(
        [
            Gene("hidden1", [16, 32, 64, 128]),
            Gene("block2", ["skip", "linear", "two-layers"]),
            Gene("act", ["relu", "tanh", "gelu"], owns_weights=False),
            hyperparameter("lr", [3e-4, 1e-3, 3e-3, 1e-2]),
        ]
    )
    fitness_name = "neg_val_mse"
    final_metric_name = "test_mse"
    final_metric_higher_is_better = False  # an error: pbtnas compare tests it the right way round

    def build(self, genome):
        return MLP(genome)

    def optimizers(self, member):
        return torch.optim.Adam(member.model.parameters(), lr=member.genome["lr"])

    def train(self, member):
        for _ in range(25):
            batch = train[torch.randint(len(train), (32,), generator=member.generator)]
            loss = F.mse_loss(member.model(X[batch]), y[batch])
            member.optimizer.zero_grad()
            loss.backward()
            member.optimizer.step()
        return {"loss": loss.item()}

    def evaluate(self, member):
        return -F.mse_loss(member.model(X[val]), y[val]).item()

    def final_evaluate(self, member):
        return {"test_mse": F.mse_loss(member.model(X[test]), y[test]).item()}

    def example_input(self, batch):
        return X[test[:batch]]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/mlp-regression")
    parser.add_argument("--population", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--workers", type=int, default=0)
    args = parser.parse_args()
    summary = pbtnas.run(DiabetesMLP, out=args.out, population=args.population, steps=args.steps, workers=args.workers, progress=True)
    print(f"best architecture {summary['best_genome']}: test MSE {summary['final_metric']:.3f} (a constant predictor scores about 1.0)")
