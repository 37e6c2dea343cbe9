"""The DrQ-v2-style learning rules: exploration, augmentation and one actor-critic update.

Functions only; the networks and optimizers are passed in. Every random draw takes an explicit
``torch.Generator`` so a member's step is a function of its state and its seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from pbtnas.errors import MemberDiverged
from pbtnas.tasks.rl.networks import Actor


@dataclass
class Nets:
    """One member's live networks and optimizers during a training step."""

    actor: Actor
    critic: nn.Module
    critic_target: nn.Module
    encoder: nn.Module | None
    actor_opt: torch.optim.Optimizer | None = None
    critic_opt: torch.optim.Optimizer | None = None
    encoder_opt: torch.optim.Optimizer | None = None

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        return self.encoder(obs) if self.encoder is not None else obs


def linear_schedule(start: float, end: float, duration: int, frame: int) -> float:
    """``linear(start -> end)`` over ``duration`` frames, then ``end`` (DrQ-v2's stddev schedule)."""
    if duration <= 0:
        return end
    mix = min(max(frame / duration, 0.0), 1.0)
    return (1.0 - mix) * start + mix * end


def noisy_action(mean: torch.Tensor, std: float, gen: torch.Generator, clip: float | None) -> torch.Tensor:
    """``clamp(mean + eps, -1, 1)`` with Gaussian ``eps`` (clipped to ``±clip`` when given); the
    gradient passes straight through the clamp to ``mean`` as in DrQ-v2's truncated normal."""
    eps = torch.randn(mean.shape, generator=gen).to(mean.device) * std
    if clip is not None:
        eps = eps.clamp(-clip, clip)
    x = mean + eps
    return x - x.detach() + x.detach().clamp(-1.0 + 1e-6, 1.0 - 1e-6)


def random_shift(x: torch.Tensor, pad: int, gen: torch.Generator) -> torch.Tensor:
    """DrQ's augmentation: replicate-pad by ``pad`` and crop back at a random integer offset."""
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen).to(x.device)
    rows = torch.arange(h, device=x.device)[None, :] + dy[:, None]  # (n, h)
    cols = torch.arange(w, device=x.device)[None, :] + dx[:, None]  # (n, w)
    batch = torch.arange(n, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # (n, h, w, c)
    return out.permute(0, 3, 1, 2).contiguous()


@torch.no_grad()
def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """Polyak-average every floating tensor (parameters and spectral-norm vectors)."""
    src = source.state_dict()
    for name, t in target.state_dict().items():
        if torch.is_floating_point(t):
            t.lerp_(src[name], tau)


def update(nets: Nets, batch, std: float, gen: torch.Generator, *, tau: float, stddev_clip: float, augment_pad: int) -> dict[str, float]:
    """One critic and one actor update on an n-step batch (clipped double Q, target critic)."""
    obs, action, reward, discount, next_obs = batch
    if nets.encoder is not None:
        obs, next_obs = obs.float(), next_obs.float()
        if augment_pad > 0:
            obs, next_obs = random_shift(obs, augment_pad, gen), random_shift(next_obs, augment_pad, gen)
    h = nets.encode(obs)
    with torch.no_grad():
        next_h = nets.encode(next_obs)
        next_action = noisy_action(nets.actor(next_h), std, gen, stddev_clip)
        tq1, tq2 = nets.critic_target(next_h, next_action)
        target_q = reward + discount * torch.min(tq1, tq2)
    q1, q2 = nets.critic(h, action)
    critic_loss = F.mse_loss(q1, target_q) + F.mse_loss(q2, target_q)
    if not torch.isfinite(critic_loss):
        raise MemberDiverged(f"critic loss became {critic_loss.item()}")
    assert nets.critic_opt is not None, "optimizers are made before training"
    nets.critic_opt.zero_grad(set_to_none=True)
    if nets.encoder_opt is not None:
        nets.encoder_opt.zero_grad(set_to_none=True)
    critic_loss.backward()
    nets.critic_opt.step()
    if nets.encoder_opt is not None:
        nets.encoder_opt.step()

    # The actor sees the encoder's output detached: only the critic trains the encoder (DrQ-v2).
    # Critic weights need no gradient here; freezing them saves a third of the actor's backward.
    critic_params = list(nets.critic.parameters())
    for p in critic_params:
        p.requires_grad_(False)
    pi = noisy_action(nets.actor(h.detach()), std, gen, stddev_clip)
    pq1, pq2 = nets.critic(h.detach(), pi)
    actor_loss = -torch.min(pq1, pq2).mean()
    for p in critic_params:
        p.requires_grad_(True)
    if not torch.isfinite(actor_loss):
        raise MemberDiverged(f"actor loss became {actor_loss.item()}")
    assert nets.actor_opt is not None, "optimizers are made before training"
    nets.actor_opt.zero_grad(set_to_none=True)
    actor_loss.backward()
    nets.actor_opt.step()
    soft_update(nets.critic_target, nets.critic, tau)
    return {"critic_loss": critic_loss.item(), "actor_loss": actor_loss.item(), "q": q1.mean().item()}
