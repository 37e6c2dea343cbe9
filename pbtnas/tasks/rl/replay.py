"""A bounded circular replay buffer with n-step returns and frame stacking on sampling.

Entries are time steps, as in DrQ-v2: entry ``i`` holds the observation reached, the action that
led to it, the reward and discount received on the way, and ``ep_step`` (0 for the first entry
of an episode, which has no action). Every observation is stored once; a frame stack is rebuilt
from the previous entries of the same episode (repeating the first frame at an episode start),
so pixel buffers hold single frames. Everything lives in torch tensors so the buffer is saved
inside a member checkpoint with ``torch.save`` and a resumed member continues exactly.
"""

from __future__ import annotations

import numpy as np
import torch


class ReplayBuffer:
    """Per-member (or shared) transition store; ``state()``/``from_state()`` round-trip it."""

    def __init__(self, capacity: int, obs_shape: tuple, obs_dtype: torch.dtype, action_dim: int, frame_stack: int = 1):
        if capacity < 2:
            raise ValueError("replay buffer capacity must be at least 2")
        self.capacity = int(capacity)
        self.frame_stack = int(frame_stack)
        self.obs = torch.zeros((self.capacity, *obs_shape), dtype=obs_dtype)
        self.action = torch.zeros((self.capacity, action_dim), dtype=torch.float32)
        self.reward = torch.zeros(self.capacity, dtype=torch.float32)
        self.discount = torch.ones(self.capacity, dtype=torch.float32)
        self.ep_step = torch.zeros(self.capacity, dtype=torch.int64)
        self.pos = 0  # next slot to write
        self.size = 0
        self._last_ep_step = -1
        self._sampleable = False  # once true it stays true: a buffer only loses its oldest entries

    # -- writing -------------------------------------------------------------------------------
    def _write(self, obs, action, reward, discount, ep_step):
        p = self.pos
        self.obs[p] = torch.as_tensor(obs, dtype=self.obs.dtype)
        self.action[p] = torch.as_tensor(action, dtype=torch.float32)
        self.reward[p] = float(reward)
        self.discount[p] = float(discount)
        self.ep_step[p] = ep_step
        self._last_ep_step = ep_step
        self.pos = (p + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def add_first(self, obs) -> None:
        """Start an episode with its first observation."""
        self._write(obs, torch.zeros(self.action.shape[1]), 0.0, 1.0, 0)

    def add(self, action, reward: float, discount: float, next_obs) -> None:
        """Append one step of the current episode (``discount`` is 0 at a true terminal)."""
        if self._last_ep_step < 0:
            raise RuntimeError("add_first must start an episode before add")
        self._write(next_obs, action, reward, discount, self._last_ep_step + 1)

    # -- sampling ------------------------------------------------------------------------------
    def _logical(self) -> np.ndarray:
        """Age rank of every slot (0 = oldest); slots never written get a negative rank."""
        slots = np.arange(self.capacity)
        start = self.pos if self.size == self.capacity else 0
        rank = (slots - start) % self.capacity
        rank[rank >= self.size] = -1
        return rank

    def valid_starts(self, nstep: int) -> np.ndarray:
        """Slots from which an n-step transition of one episode, with its frame history, exists."""
        rank = self._logical()
        ep = self.ep_step.numpy()
        ahead = (np.arange(self.capacity) + nstep) % self.capacity
        history = np.minimum(self.frame_stack - 1, ep)
        ok = (rank >= 0) & (rank + nstep <= self.size - 1) & (rank - history >= 0)
        ok &= ep[ahead] == ep + nstep
        return np.flatnonzero(ok)

    def can_sample(self, nstep: int) -> bool:
        """Whether some complete n-step transition exists (cheap once the buffer has one)."""
        if self._sampleable:
            return True
        self._sampleable = len(self.valid_starts(nstep)) > 0
        return self._sampleable

    def __len__(self) -> int:
        return self.size

    def stacked(self, idx: np.ndarray) -> torch.Tensor:
        """Observations of slots ``idx`` with their frame history stacked on the first axis."""
        if self.frame_stack == 1:
            return self.obs[torch.as_tensor(idx)]
        ep = self.ep_step.numpy()[idx]
        frames = []
        for back in range(self.frame_stack - 1, -1, -1):
            src = (idx - np.minimum(back, ep)) % self.capacity
            frames.append(self.obs[torch.as_tensor(src)])
        return torch.cat(frames, dim=1)

    def sample(self, batch_size: int, nstep: int, gamma: float, rng: np.random.Generator):
        """A batch ``(obs, action, reward, discount, next_obs)`` of n-step transitions.

        ``reward`` is the discounted n-step sum and ``discount`` is ``gamma**n`` times the
        environment's discounts (0 after a terminal), as in DrQ-v2.
        """
        starts = self.valid_starts(nstep)
        if len(starts) == 0:
            raise RuntimeError("the replay buffer holds no complete n-step transition yet")
        idx = starts[rng.integers(len(starts), size=batch_size)]
        reward = torch.zeros(batch_size)
        discount = torch.ones(batch_size)
        for j in range(1, nstep + 1):
            s = torch.as_tensor((idx + j) % self.capacity)
            reward += discount * self.reward[s]
            discount *= self.discount[s] * gamma
        action = self.action[torch.as_tensor((idx + 1) % self.capacity)]
        return self.stacked(idx), action, reward[:, None], discount[:, None], self.stacked((idx + nstep) % self.capacity)

    # -- checkpointing -------------------------------------------------------------------------
    def state(self) -> dict:
        """Plain tensors and ints (no copies: the caller's checkpoint clones when it must)."""
        return {
            "capacity": self.capacity,
            "frame_stack": self.frame_stack,
            "obs": self.obs,
            "action": self.action,
            "reward": self.reward,
            "discount": self.discount,
            "ep_step": self.ep_step,
            "pos": self.pos,
            "size": self.size,
            "last_ep_step": self._last_ep_step,
        }

    @classmethod
    def from_state(cls, data: dict) -> "ReplayBuffer":
        buf = cls.__new__(cls)
        buf.capacity, buf.frame_stack = int(data["capacity"]), int(data["frame_stack"])
        for name in ("obs", "action", "reward", "discount", "ep_step"):
            setattr(buf, name, data[name])
        buf.pos, buf.size, buf._last_ep_step = int(data["pos"]), int(data["size"]), int(data["last_ep_step"])
        buf._sampleable = False
        return buf
