"""Discriminators: the fixed one of the "gan" space and the searchable one of "gan-hard".

Both end in ReLU, global *sum* pooling and a spectral-normalised linear layer, and
spectral-normalise every convolution.
"""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm

from pbtnas.search.space import Genome
from pbtnas.tasks.gan.ops import Down, make_op
from pbtnas.tasks.gan.space import D_BLOCKS


def _conv(c_in: int, c_out: int, k: int) -> nn.Module:
    return spectral_norm(nn.Conv2d(c_in, c_out, k, padding=k // 2))


class OptimizedBlock(nn.Module):
    """The first block (SNGAN's "optimised" block): conv, ReLU, conv, avgpool + pooled 1x1 shortcut."""

    def __init__(self, c_in: int, c: int):
        super().__init__()
        self.conv1, self.conv2, self.shortcut = _conv(c_in, c, 3), _conv(c, c, 3), _conv(c_in, c, 1)

    def forward(self, x):
        h = F.avg_pool2d(self.conv2(F.relu(self.conv1(x))), 2)
        return h + self.shortcut(F.avg_pool2d(x, 2))


class ResBlock(nn.Module):
    """Pre-activation residual block, optionally halving the resolution."""

    def __init__(self, c: int, downsample: bool):
        super().__init__()
        self.conv1, self.conv2, self.shortcut = _conv(c, c, 3), _conv(c, c, 3), _conv(c, c, 1)
        self.downsample = downsample

    def forward(self, x):
        h = self.conv2(F.relu(self.conv1(F.relu(x))))
        s = self.shortcut(x)
        if self.downsample:
            h, s = F.avg_pool2d(h, 2), F.avg_pool2d(s, 2)
        return h + s


class FixedDiscriminator(nn.Module):
    """The "gan" space's discriminator: an optimised block and 3 residual blocks (the first two
    downsample), ReLU, global sum pooling, spectral-norm linear."""

    def __init__(self, channels: int, width: int):
        super().__init__()
        self.blocks = nn.Sequential(OptimizedBlock(channels, width), ResBlock(width, True), ResBlock(width, True), ResBlock(width, False))
        self.linear = spectral_norm(nn.Linear(width, 1))

    def forward(self, x):
        h = F.relu(self.blocks(x)).sum(dim=(2, 3))
        return self.linear(h).squeeze(1)


class SearchBlock(nn.Module):
    """A "gan-hard" discriminator block: two branches from the input, summed::

    n0, n1, n2 = c0(x), c1(x), c2(x)
    branch A = c3(n0) + c4(n2)       branch B = c5(n1) + c6(n2)
    out = down0(A) + down1(B)        (downsampling only when the block's flag is on)
    """

    def __init__(self, genome: Genome, b: int, c_in: int, c: int):
        super().__init__()
        g = lambda slot: genome[f"d.block{b}.{slot}"]  # noqa: E731
        first = b == 0
        self.c0, self.c1, self.c2 = (make_op(g(f"c{j}"), c_in, c, sn=True, preact=not first) for j in range(3))
        self.c3, self.c4, self.c5, self.c6 = (make_op(g(f"c{j}"), c, c, sn=True) for j in range(3, 7))
        # Down ops are built even when the flag is off, so every genome has the same tensors.
        self.down0, self.down1 = Down(g("down0"), c), Down(g("down1"), c)
        self.downsample = bool(g("downsample"))

    def _branch(self, op_a, op_b, na, nb, down: Down):
        if self.downsample and down.on_input:
            return op_a(down(na)) + op_b(down(nb))
        out = op_a(na) + op_b(nb)
        return down(out) if self.downsample else out

    def forward(self, x):
        n0, n1, n2 = self.c0(x), self.c1(x), self.c2(x)
        a = self._branch(self.c3, self.c4, n0, n2, self.down0)
        b = self._branch(self.c5, self.c6, n1, n2, self.down1)
        return a + b


class SearchDiscriminator(nn.Module):
    """The "gan-hard" discriminator: 4 searchable blocks, ReLU, global sum pooling, SN linear."""

    def __init__(self, genome: Genome, channels: int, width: int):
        super().__init__()
        self.blocks = nn.Sequential(*(SearchBlock(genome, b, channels if b == 0 else width, width) for b in range(D_BLOCKS)))
        self.linear = spectral_norm(nn.Linear(width, 1))

    def forward(self, x):
        h = F.relu(self.blocks(x)).sum(dim=(2, 3))
        return self.linear(h).squeeze(1)
