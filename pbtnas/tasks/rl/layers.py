"""Building blocks of the RL search space: activations, spectral-normalisable layers, blocks.

Spectral normalisation is a *weightless* gene, so switching it on or off must not change a
layer's state dict: every linear and convolution here always carries its power-iteration
vector ``u`` as a buffer and only the forward pass depends on the flag. A child that inherits
the donor's flag therefore loads the primary parent's tensors strictly, and no tensor moves.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

ACTIVATIONS = ("identity", "tanh", "relu", "swish")


def make_activation(name: str) -> nn.Module:
    """The module of an activation option (weightless)."""
    table = {"identity": nn.Identity, "tanh": nn.Tanh, "relu": nn.ReLU, "swish": nn.SiLU}
    if name not in table:
        raise ValueError(f"unknown activation {name!r}; expected one of {ACTIVATIONS}")
    return table[name]()


def _sigma(weight: torch.Tensor, u: torch.Tensor, update: bool) -> torch.Tensor:
    """Largest singular value of ``weight`` (flattened to 2-D) by one power iteration.

    ``u`` is renormalised on use because shrink-perturb and Polyak averaging scale it.
    """
    w2 = weight.flatten(1)
    with torch.no_grad():
        u_n = F.normalize(u, dim=0, eps=1e-12)
        v = F.normalize(torch.mv(w2.t(), u_n), dim=0, eps=1e-12)
        if update:
            u_n = F.normalize(torch.mv(w2, v), dim=0, eps=1e-12)
            u.copy_(u_n)
            v = F.normalize(torch.mv(w2.t(), u_n), dim=0, eps=1e-12)
    return torch.dot(u_n, torch.mv(w2, v))


class SNLinear(nn.Module):
    """``nn.Linear`` with optional spectral normalisation; the state dict is the same either way."""

    def __init__(self, in_features: int, out_features: int, spectral: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.register_buffer("u", F.normalize(torch.randn(out_features), dim=0))
        self.spectral = spectral
        nn.init.orthogonal_(self.weight)  # DrQ-v2's initialisation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w: torch.Tensor = self.weight
        if self.spectral:
            w = w / _sigma(w, self.u, self.training)
        return F.linear(x, w, self.bias)


class SNConv2d(nn.Module):
    """A stride-1 'same' convolution with optional spectral normalisation (same state dict)."""

    def __init__(self, in_ch: int, out_ch: int, k: int, spectral: bool = False, groups: int = 1, stride: int = 1, padding: int | None = None):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_ch, in_ch // groups, k, k))
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.register_buffer("u", F.normalize(torch.randn(out_ch), dim=0))
        self.spectral = spectral
        self.groups = groups
        self.stride = stride
        self.padding = k // 2 if padding is None else padding
        nn.init.orthogonal_(self.weight, gain=nn.init.calculate_gain("relu"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w: torch.Tensor = self.weight
        if self.spectral:
            w = w / _sigma(w, self.u, self.training)
        return F.conv2d(x, w, self.bias, self.stride, self.padding, 1, self.groups)


# -- searchable MLP layers (actor and critic) -------------------------------------------------
MLP_LAYERS = ("identity", "linear", "residual-0.5", "residual-2")


class ResidualMLP(nn.Module):
    """Pre-LayerNorm MLP block with a skip: ``x + fc2(relu(fc1(ln(x))))``, inner width k * width."""

    def __init__(self, width: int, factor: float, spectral: bool):
        super().__init__()
        inner = max(1, int(round(width * factor)))
        self.ln = nn.LayerNorm(width)
        self.fc1 = SNLinear(width, inner, spectral)
        self.fc2 = SNLinear(inner, width, spectral)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(F.relu(self.fc1(self.ln(x))))


def make_mlp_layer(option: str, width: int, spectral: bool) -> nn.Module:
    """One searchable hidden layer of width ``width`` (input and output shapes equal)."""
    if option == "identity":
        return nn.Identity()
    if option == "linear":
        return SNLinear(width, width, spectral)
    if option.startswith("residual-"):
        return ResidualMLP(width, float(option.split("-", 1)[1]), spectral)
    raise ValueError(f"unknown MLP layer {option!r}; expected one of {MLP_LAYERS}")


# -- searchable convolutional layers (pixel encoder) -----------------------------------------
CONV_LAYERS = ("identity", "conv3", "conv5", "conv7", "res3", "res5", "res7", "sep3", "sep5", "sep7")


class ResidualConv(nn.Module):
    """``x + conv(relu(conv(x)))`` with two k x k same-padding convolutions."""

    def __init__(self, ch: int, k: int, spectral: bool):
        super().__init__()
        self.conv1 = SNConv2d(ch, ch, k, spectral)
        self.conv2 = SNConv2d(ch, ch, k, spectral)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class SeparableConv(nn.Module):
    """Depthwise k x k then pointwise 1 x 1 convolution."""

    def __init__(self, ch: int, k: int, spectral: bool):
        super().__init__()
        self.depthwise = SNConv2d(ch, ch, k, spectral, groups=ch)
        self.pointwise = SNConv2d(ch, ch, 1, spectral)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


def make_conv_layer(option: str, ch: int, spectral: bool) -> nn.Module:
    """One searchable encoder layer (stride 1, same padding, ``ch`` channels in and out)."""
    if option == "identity":
        return nn.Identity()
    kind, k = option[:-1], int(option[-1])
    if kind == "conv":
        return SNConv2d(ch, ch, k, spectral)
    if kind == "res":
        return ResidualConv(ch, k, spectral)
    if kind == "sep":
        return SeparableConv(ch, k, spectral)
    raise ValueError(f"unknown encoder layer {option!r}; expected one of {CONV_LAYERS}")
