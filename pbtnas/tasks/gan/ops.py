"""Candidate operations shared by the generator and the discriminator.

Every op of one position maps ``(N, c_in, H, W)`` to ``(N, c_out, H, W)``, so any option can
replace any other there. Convolutions are pre-activation (ReLU then conv), without
normalisation; in the discriminator they are spectral-normalised.
"""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm

OPS = ("none", "skip", "conv1x1", "conv3x3", "conv5x5", "dilconv3x3", "dilconv5x5")
CONVS = OPS[2:]
UPSAMPLES = ("nearest", "bilinear", "deconv")
DOWNSAMPLES = (
    "avgpool-input",
    "maxpool-input",
    "avgpool",
    "maxpool",
    "conv3x3",
    "conv5x5",
    "dilconv3x3",
    "dilconv5x5",
)


class Zero(nn.Module):
    """The "none" edge: contributes zeros (so a node whose every edge is "none" is zero)."""

    def forward(self, x):
        # x * 0 rather than zeros_like: the output stays in the autograd graph, so a network
        # whose every path is "none" still yields a (zero-gradient) loss instead of an error.
        return x * 0.0


def _sn(module: nn.Module, on: bool) -> nn.Module:
    return spectral_norm(module) if on else module


def make_op(name: str, c_in: int, c_out: int, *, sn: bool = False, preact: bool = True, stride: int = 1) -> nn.Module:
    """One candidate operation (see :data:`OPS`). ``preact=False`` drops the leading ReLU (ops
    that read an image in [-1, 1] must not cut off its negative half)."""
    if name == "none":
        if c_in != c_out or stride != 1:
            raise ValueError("'none' needs equal input and output shapes")
        return Zero()
    if name == "skip":
        if c_in != c_out or stride != 1:
            raise ValueError("'skip' needs equal input and output shapes")
        return nn.Identity()
    layers: list[nn.Module] = [nn.ReLU()] if preact else []
    if name.startswith("conv"):
        k = int(name[len("conv")]) if name != "conv1x1" else 1
        layers.append(_sn(nn.Conv2d(c_in, c_out, k, stride=stride, padding=k // 2), sn))
    elif name.startswith("dilconv"):
        k = int(name[len("dilconv")])
        # Depthwise dilated conv then a pointwise conv, as in DARTS-style cells.
        layers.append(_sn(nn.Conv2d(c_in, c_in, k, stride=stride, padding=k - 1, dilation=2, groups=c_in), sn))
        layers.append(_sn(nn.Conv2d(c_in, c_out, 1), sn))
    else:
        raise ValueError(f"unknown op {name!r}; expected one of {OPS}")
    return nn.Sequential(*layers)


class Up(nn.Module):
    """A generator upsampling edge (x2): interpolation -> ReLU -> 1x1 conv, or
    ReLU -> depthwise 3x3 transposed conv (stride 2) -> 1x1 conv for "deconv"."""

    def __init__(self, mode: str, c: int):
        super().__init__()
        if mode not in UPSAMPLES:
            raise ValueError(f"unknown upsampling {mode!r}; expected one of {UPSAMPLES}")
        self.mode = mode
        if mode == "deconv":
            self.deconv = nn.ConvTranspose2d(c, c, 3, stride=2, padding=1, output_padding=1, groups=c)
        self.conv = nn.Conv2d(c, c, 1)

    def forward(self, x):
        if self.mode == "deconv":
            x = self.deconv(F.relu(x))
        else:
            x = F.relu(F.interpolate(x, scale_factor=2.0, mode=self.mode, align_corners=False if self.mode == "bilinear" else None))
        return self.conv(x)


class Down(nn.Module):
    """A discriminator downsampling choice (x1/2). Pooling "-input" variants are applied to the
    branch's inputs (its ops then run at the lower resolution); the rest to the branch output."""

    def __init__(self, mode: str, c: int):
        super().__init__()
        if mode not in DOWNSAMPLES:
            raise ValueError(f"unknown downsampling {mode!r}; expected one of {DOWNSAMPLES}")
        self.mode = mode
        self.on_input = mode.endswith("-input")
        if "conv" in mode:
            self.op = make_op(mode, c, c, sn=True, stride=2)

    def forward(self, x):
        if "avgpool" in self.mode:
            return F.avg_pool2d(x, 2)
        if "maxpool" in self.mode:
            return F.max_pool2d(x, 2)
        return self.op(x)
