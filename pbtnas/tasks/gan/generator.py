"""The searchable generator (docs/algorithm.md §5: the cells of both spaces, plus the noise projections of gan-hard).

z -> (fixed linear projection to a ``bottom x bottom`` map | searchable projection 0) ->
3 cells, each doubling the resolution -> BN, ReLU, 3x3 conv, tanh. Cell ``i``::

    n1 = up0(x);  n2 = up1(x)
    n3 = c0(n1) + c1(n2) + sum_j skip_in_j(output of earlier cell j)
    n4 = c2(n1) + c3(n2) + c4(n3)       -> the cell's output

The cross-scale skips (nearest upsampling, ReLU, 1x1 conv) are fixed layers no gene owns. In
"gan-hard", projection ``k > 0``, when enabled, is added to the input of cell ``k``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from pbtnas.search.space import Genome
from pbtnas.tasks.gan.ops import Up, make_op
from pbtnas.tasks.gan.space import N_CELLS


class Cell(nn.Module):
    """One generator cell at ``c`` channels; ``n_skips`` earlier cells feed its node 3."""

    def __init__(self, genome: Genome, i: int, c: int, n_skips: int):
        super().__init__()
        g = lambda slot: genome[f"g.cell{i}.{slot}"]  # noqa: E731
        self.up0, self.up1 = Up(g("up0"), c), Up(g("up1"), c)
        self.c0, self.c1, self.c2, self.c3, self.c4 = (make_op(g(f"c{j}"), c, c) for j in range(5))
        self.skip_in = nn.ModuleList(nn.Conv2d(c, c, 1) for _ in range(n_skips))

    def forward(self, x: torch.Tensor, earlier: list[torch.Tensor]) -> torch.Tensor:
        n1, n2 = self.up0(x), self.up1(x)
        n3 = self.c0(n1) + self.c1(n2)
        for conv, h in zip(self.skip_in, earlier):
            h = F.interpolate(h, size=n3.shape[-2:], mode="nearest")
            n3 = n3 + conv(F.relu(h))
        return self.c2(n1) + self.c3(n2) + self.c4(n3)


class Projection(nn.Module):
    """A "gan-hard" noise projection: (all of z | its k-th third) -> linear -> ``c`` channels at
    the chosen resolution -> upsampled to ``target`` -> dropout."""

    def __init__(self, genome: Genome, k: int, latent_dim: int, c: int, bottom: int):
        super().__init__()
        option = genome[f"g.proj{k}.linear"]
        part, _, where = option.partition("-")
        self.target = bottom * 2**k
        self.size = {"bottom": bottom, "prev": max(1, self.target // 2), "cell": self.target}[where]
        self.third = latent_dim // 3
        self.start = k * self.third if part == "third" else 0
        self.stop = (k + 1) * self.third if part == "third" else latent_dim
        self.c = c
        self.up_mode = genome[f"g.proj{k}.up_mode"]
        self.linear = nn.Linear(self.stop - self.start, c * self.size * self.size)
        self.dropout = nn.Dropout(float(genome[f"g.proj{k}.dropout"]))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.linear(z[:, self.start : self.stop]).view(-1, self.c, self.size, self.size)
        if self.size != self.target:
            x = F.interpolate(x, size=(self.target, self.target), mode=self.up_mode, align_corners=False if self.up_mode == "bilinear" else None)
        return self.dropout(x)


class Generator(nn.Module):
    """The generator of a genome; ``hard`` selects the "gan-hard" noise projections."""

    def __init__(self, genome: Genome, *, hard: bool, width: int, latent_dim: int, bottom: int, channels: int):
        super().__init__()
        self.latent_dim = latent_dim
        self.width, self.bottom, self.hard = width, bottom, hard
        if hard:
            self.projs = nn.ModuleList(Projection(genome, k, latent_dim, width, bottom) for k in range(N_CELLS))
            # Disabled projections keep their weights (so any genome loads any state) but are unused.
            self.enabled = [True] + [bool(genome[f"g.proj{k}.enabled"]) for k in range(1, N_CELLS)]
        else:
            self.l1 = nn.Linear(latent_dim, width * bottom * bottom)
        self.cells = nn.ModuleList(Cell(genome, i, width, i) for i in range(N_CELLS))
        self.head = nn.Sequential(nn.BatchNorm2d(width), nn.ReLU(), nn.Conv2d(width, channels, 3, padding=1), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.hard:
            x = self.projs[0](z)
        else:
            x = self.l1(z).view(-1, self.width, self.bottom, self.bottom)
        outputs: list[torch.Tensor] = []
        for i, cell in enumerate(self.cells):
            if self.hard and i > 0 and self.enabled[i]:
                x = x + self.projs[i](z)
            x = cell(x, outputs)
            outputs.append(x)
        return self.head(x)
