"""One step of GAN training (docs/algorithm.md §5): hinge loss, the discriminator on every
batch, the generator on every ``n_critic``-th batch with twice the batch, and an EMA generator
updated after every generator update.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from pbtnas.errors import MemberDiverged
from pbtnas.tasks.data import ImageSet


@dataclass
class TrainSettings:
    """Hyperparameters of :func:`train_gan` (fixed per task; not searched)."""

    batch_size: int
    batches: int
    n_critic: int
    latent_dim: int
    ema_decay: float
    ema_warmup: bool


def ema_decay_at(decay: float, updates: int, warmup: bool) -> float:
    """The EMA decay for the ``updates``-th generator update.

    With ``warmup`` the decay is ``min(decay, (1 + n) / (10 + n))`` (TensorFlow's
    ``num_updates`` rule), so the EMA follows the generator early on instead of averaging in
    its random initialisation for thousands of updates — which a short CPU budget never outruns.
    """
    return min(decay, (1.0 + updates) / (10.0 + updates)) if warmup else decay


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p, 1.0 - decay)
    # Buffers (BatchNorm statistics) are copied: the EMA generator runs in eval mode with them.
    for ema_buffer, buffer in zip(ema.buffers(), model.buffers()):
        ema_buffer.copy_(buffer)


def hinge_d_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    return F.relu(1.0 - real_scores).mean() + F.relu(1.0 + fake_scores).mean()


def train_gan(
    gen: nn.Module,
    gen_ema: nn.Module,
    disc: nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    data: ImageSet,
    s: TrainSettings,
    counters: dict,
    device: torch.device,
    channels_last: bool = False,
) -> dict:
    """Run ``s.batches`` discriminator iterations (and the generator updates among them).

    ``counters`` (``d_iters``, ``g_updates``) carry across steps, so the generator's schedule
    and the EMA warm-up continue where the previous step left off. Randomness comes from the
    global torch RNG, which the caller seeds inside a forked RNG scope. ``channels_last`` feeds
    real images in that memory format (the caller converts the networks).
    """
    gen.train()
    disc.train()
    # Losses stay tensors: reading one (.item(), or branching on isfinite) every batch would
    # force a device synchronisation per iteration on a GPU. They are checked for non-finite
    # values every ``CHECK_EVERY`` iterations and at the end, which raises the same
    # MemberDiverged (the member is replaced either way); the values are the same floats.
    d_losses: list[torch.Tensor] = []
    g_losses: list[torch.Tensor] = []
    g_iters: list[int] = []
    checked = [0, 0]
    start = counters["d_iters"]
    for i in range(s.batches):
        idx = torch.randint(len(data), (s.batch_size,)).numpy()
        real = data.batch(idx, device)
        if channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            fake = gen(torch.randn(s.batch_size, s.latent_dim, device=device))
        d_loss = hinge_d_loss(disc(real), disc(fake))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        d_losses.append(d_loss.detach())
        counters["d_iters"] += 1

        if counters["d_iters"] % s.n_critic == 0:
            disc.requires_grad_(False)  # no discriminator gradients are needed for G's update
            g_loss = -disc(gen(torch.randn(2 * s.batch_size, s.latent_dim, device=device))).mean()
            disc.requires_grad_(True)
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            update_ema(gen_ema, gen, ema_decay_at(s.ema_decay, counters["g_updates"], s.ema_warmup))
            counters["g_updates"] += 1
            g_losses.append(g_loss.detach())
            g_iters.append(counters["d_iters"])
        if (i + 1) % CHECK_EVERY == 0 or i + 1 == s.batches:
            _check_finite(d_losses, g_losses, g_iters, checked, start)
    d_values = torch.stack(d_losses).tolist() if d_losses else []
    g_values = torch.stack(g_losses).tolist() if g_losses else []
    return {
        "d_loss": float(np.mean(d_values)) if d_values else float("nan"),
        "g_loss": float(np.mean(g_values)) if g_values else float("nan"),
        "g_updates": counters["g_updates"],
    }


#: iterations between two checks for non-finite losses (one device synchronisation each)
CHECK_EVERY = 25


def _check_finite(d_losses, g_losses, g_iters, checked, start) -> None:
    """Raise MemberDiverged at the first non-finite loss recorded since the last check."""
    for kind, losses, k in (("discriminator", d_losses, 0), ("generator", g_losses, 1)):
        new = losses[checked[k] :]
        if new:
            values = torch.stack(new)
            bad = (~torch.isfinite(values)).nonzero()
            if len(bad):
                j = checked[k] + int(bad[0, 0])
                after = start + j if k == 0 else g_iters[j]
                raise MemberDiverged(f"{kind} loss became {losses[j].item()} after {after} iterations")
        checked[k] = len(losses)
