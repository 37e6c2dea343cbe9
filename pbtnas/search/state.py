"""The state of one population member, in a form operators can edit without building models.

A :class:`MemberState` holds plain state dicts, so mixing and mutation are pure tensor edits:

* ``models``: model key -> ``state_dict`` (e.g. ``{"model": ...}``, or ``{"gen": ..., "gen_ema": ...,
  "disc": ...}``). Entries are addressed by exact module path.
* ``optim``: model key -> parameter name -> that parameter's optimizer state (Adam moments and
  step). Keyed by *name*, never by position, so a transplanted layer's moments can be dropped or
  replaced without disturbing any other parameter's.
* ``extra``: anything else the task carries between steps (counters, RNG state, replay buffers).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Iterable

import torch

from pbtnas.errors import CheckpointError


@dataclass
class MemberState:
    """Weights, optimizer moments and task extras of one member (see module docstring)."""

    models: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    optim: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def clone(self) -> "MemberState":
        return MemberState(
            models={k: {n: t.detach().clone() for n, t in sd.items()} for k, sd in self.models.items()},
            optim=copy.deepcopy(self.optim),
            extra=copy.deepcopy(self.extra),
        )

    def to_dict(self) -> dict:
        return {"models": self.models, "optim": self.optim, "extra": self.extra}

    @classmethod
    def from_dict(cls, data: dict) -> "MemberState":
        return cls(models=data["models"], optim=data.get("optim", {}), extra=data.get("extra", {}))


def under_prefix(key: str, prefix: str) -> bool:
    """True when ``key`` is the module path ``prefix`` or lies inside it (never a substring match)."""
    return key == prefix or key.startswith(prefix + ".")


def keys_under(keys: Iterable[str], prefixes: Iterable[str]) -> list[str]:
    prefixes = list(prefixes)
    return [k for k in keys if any(under_prefix(k, p) for p in prefixes)]


def capture_optimizer(optimizer: torch.optim.Optimizer, model: torch.nn.Module, prefix: str = "") -> dict:
    """Optimizer state of ``model``'s parameters keyed by parameter name (tensors cloned)."""
    named = {}
    for name, param in model.named_parameters():
        state = optimizer.state.get(param)
        if state:
            named[prefix + name] = {k: (v.detach().clone() if torch.is_tensor(v) else copy.deepcopy(v)) for k, v in state.items()}
    return named


def restore_optimizer(optimizer: torch.optim.Optimizer, model: torch.nn.Module, named: dict, prefix: str = "") -> None:
    """Load name-keyed optimizer state; parameters without an entry start with fresh moments.

    Hyperparameters (learning rate, betas, ...) are not part of the named state: they come from
    the optimizer as the task just built it from the config.
    """
    for name, param in model.named_parameters():
        entry = named.get(prefix + name)
        if entry is None:
            continue
        restored = {}
        for k, v in entry.items():
            if torch.is_tensor(v) and v.shape == param.shape:
                restored[k] = v.detach().clone().to(device=param.device, dtype=v.dtype)
            elif torch.is_tensor(v):
                restored[k] = v.detach().clone()  # scalar step counters stay on CPU as Adam expects
            else:
                restored[k] = copy.deepcopy(v)
        optimizer.state[param] = restored


def state_dict_cpu(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of a module's state dict."""
    return {k: v.detach().to("cpu").clone() for k, v in module.state_dict().items()}


def is_continuous(tensor: torch.Tensor) -> bool:
    """A real or complex tensor: one that shrink-perturb scales, a slice of which still means
    something in a tensor of another shape, and that can turn non-finite (integer and boolean
    tensors, such as counters, indices and masks, are none of these)."""
    return torch.is_floating_point(tensor) or torch.is_complex(tensor)


def all_finite(state: MemberState) -> bool:
    """Whether every floating tensor of every model is finite."""
    for sd in state.models.values():
        for t in sd.values():
            if is_continuous(t) and not torch.isfinite(t).all():
                return False
    return True


def state_mismatch(expected: MemberState, found: MemberState) -> str:
    """The first difference in tensor names or shapes between two states' models ("" if none)."""
    for key, tensors in expected.models.items():
        stored = found.models.get(key)
        if stored is None:
            return f"it has no model {key!r}"
        missing = [name for name in tensors if name not in stored]
        if missing:
            return f"{key}:{missing[0]} is missing" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
        extra = [name for name in stored if name not in tensors]
        if extra:
            return f"{key}:{extra[0]} is no longer in the network" + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else "")
        for name, tensor in tensors.items():
            if tuple(stored[name].shape) != tuple(tensor.shape):
                return f"{key}:{name} is {tuple(stored[name].shape)} in the checkpoint and {tuple(tensor.shape)} in the network"
    return ""


def load_weights(module: torch.nn.Module, weights: dict[str, torch.Tensor], key: str = "model") -> None:
    """``module.load_state_dict(weights, strict=True)``, with a stored state that does not fit the
    network (a task edited since its run was made) as one :class:`CheckpointError` naming the
    first tensor that differs, instead of torch's many-line error."""
    try:
        module.load_state_dict(weights, strict=True)
    except RuntimeError:
        expected = MemberState(models={key: dict(module.state_dict())})
        problem = state_mismatch(expected, MemberState(models={key: weights})) or "torch refused to load them"
        raise CheckpointError(
            f"the stored weights do not fit the task's network ({problem.replace(' in the checkpoint', ' stored')}): "
            "the task changed since they were saved; restore it, or start a new run"
        ) from None
