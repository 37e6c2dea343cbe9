"""The actor, the twin-Q critic and the pixel encoder of a genome (docs/algorithm.md §5).

Module paths are part of the contract with :mod:`pbtnas.tasks.rl.space`: a gene owns exactly
the modules it names there (e.g. ``q1.layers.2`` in the critic), so keep the two in step.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from pbtnas.search.space import Genome
from pbtnas.tasks.rl.layers import SNConv2d, make_activation, make_conv_layer, make_mlp_layer

N_LAYERS = 3


class Trunk(nn.Module):
    """``Linear(repr -> feature_dim)``, LayerNorm, activation (the DrQ-v2 trunk)."""

    def __init__(self, repr_dim: int, feature_dim: int, activation: str):
        super().__init__()
        self.fc = nn.Linear(repr_dim, feature_dim)
        nn.init.orthogonal_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)
        self.ln = nn.LayerNorm(feature_dim)
        self.act = make_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.ln(self.fc(x)))


class SearchedMLP(nn.Module):
    """Fixed ``fc_in`` to the hidden width, activation, 3 searchable layers each followed by an
    activation, fixed ``head``. ``prefix`` names the genes (``actor`` or ``critic.q1``)."""

    def __init__(self, genome: Genome, prefix: str, in_dim: int, hidden: int, out_dim: int):
        super().__init__()
        spectral = bool(genome[f"{prefix}.sn"])
        self.fc_in = nn.Linear(in_dim, hidden)
        self.layers = nn.ModuleList([make_mlp_layer(genome[f"{prefix}.layer{i}"], hidden, spectral) for i in range(N_LAYERS)])
        self.act_in = make_activation(genome[f"{prefix}.act0"])
        self.acts = nn.ModuleList([make_activation(genome[f"{prefix}.act{i + 1}"]) for i in range(N_LAYERS)])
        self.head = nn.Linear(hidden, out_dim)
        for fc in (self.fc_in, self.head):
            nn.init.orthogonal_(fc.weight)
            nn.init.zeros_(fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act_in(self.fc_in(x))
        for layer, act in zip(self.layers, self.acts):
            x = act(layer(x))
        return self.head(x)


class Actor(nn.Module):
    """Deterministic policy: trunk, searched MLP, tanh. Returns the mean action in [-1, 1]."""

    def __init__(self, genome: Genome, repr_dim: int, action_dim: int, hidden: int):
        super().__init__()
        feature_dim = int(genome["actor.feature_dim"])
        self.trunk = Trunk(repr_dim, feature_dim, genome["actor.trunk_act"])
        self.policy = SearchedMLP(genome, "actor", feature_dim, hidden, action_dim)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.policy(self.trunk(h)))


class Critic(nn.Module):
    """Two Q networks on a shared trunk (clipped double Q). Returns ``(q1, q2)``."""

    def __init__(self, genome: Genome, repr_dim: int, action_dim: int, hidden: int):
        super().__init__()
        feature_dim = int(genome["critic.feature_dim"])
        self.trunk = Trunk(repr_dim, feature_dim, genome["critic.trunk_act"])
        self.q1 = SearchedMLP(genome, "critic.q1", feature_dim + action_dim, hidden, 1)
        self.q2 = SearchedMLP(genome, "critic.q2", feature_dim + action_dim, hidden, 1)

    def forward(self, h: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([self.trunk(h), action], dim=-1)
        return self.q1(x), self.q2(x)


class Encoder(nn.Module):
    """Pixel encoder: fixed 3x3 stride-2 conv, activation, 3 searchable same-size layers each
    followed by an activation, flatten. Input: uint8-valued frames stacked on channels."""

    def __init__(self, genome: Genome, obs_shape: tuple[int, int, int], channels: int):
        super().__init__()
        spectral = bool(genome["encoder.sn"])
        self.conv0 = SNConv2d(obs_shape[0], channels, 3, spectral=False, stride=2, padding=0)
        self.layers = nn.ModuleList([make_conv_layer(genome[f"encoder.layer{i}"], channels, spectral) for i in range(N_LAYERS)])
        self.act_in = make_activation(genome["encoder.act0"])
        self.acts = nn.ModuleList([make_activation(genome[f"encoder.act{i + 1}"]) for i in range(N_LAYERS)])
        side = (obs_shape[1] - 3) // 2 + 1
        self.repr_dim = channels * side * ((obs_shape[2] - 3) // 2 + 1)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = obs / 255.0 - 0.5
        x = self.act_in(self.conv0(x))
        for layer, act in zip(self.layers, self.acts):
            x = act(layer(x))
        return x.flatten(1)


class DeployedActor(nn.Module):
    """What ``build_module`` returns: observation -> environment action (deterministic).

    ``obs_shape`` and ``action_dim`` say what it takes and gives; the action is rescaled from
    [-1, 1] to the environment's bounds ``action_low``/``action_high``.
    """

    def __init__(self, encoder: nn.Module | None, actor: Actor, obs_shape: tuple, low: torch.Tensor, high: torch.Tensor):
        super().__init__()
        self.encoder = encoder if encoder is not None else nn.Identity()
        self.actor = actor
        self.obs_shape = tuple(int(s) for s in obs_shape)
        self.action_dim = int(low.numel())
        self.register_buffer("action_low", low.float().clone())
        self.register_buffer("action_high", high.float().clone())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        a = self.actor(self.encoder(obs.float()))
        return self.action_low + (a + 1.0) * 0.5 * (self.action_high - self.action_low)
