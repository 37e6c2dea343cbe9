"""Shape-adapting inheritance: fit inherited tensors to the child's architecture.

Most search spaces keep every option of a position at the same input and output shape, and
then a child's tensors always fit its architecture. A *width gene* (a hidden width of 16, 32 or
64) breaks that: the layer it owns changes shape, and so does the layer that consumes its
output, although that consumer may be owned by another gene or by none. The helpers here make
any child state fit the child's architecture, using one freshly initialised model of that
architecture as the reference:

* a tensor whose shape differs keeps the overlapping slice (``[:min(a0, b0), :min(a1, b1), ...]``)
  and takes the rest from the fresh model;
* a tensor whose number of dimensions differs has no meaningful overlap and is taken fresh;
* an integer or boolean tensor whose shape differs (an index, a mask, a count sized by a width)
  is taken fresh: an index into 12 channels, sliced to 8, would point past the layer's end;
* a tensor the architecture lacks is dropped, one it needs but the state lacks is taken fresh;
* the optimizer moments of every tensor whose shape changed (or that was dropped or added) are
  dropped, so that parameter starts with fresh moments.

The helpers are pure tensor edits: no I/O, no random draws (the fresh model already holds all
the randomness they use).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from pbtnas.search.state import MemberState, is_continuous
from pbtnas.search.task_protocol import TaskProtocol

#: how the overlap of an inherited tensor is made from (inherited part, fresh part)
Combine = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def overlap(a: torch.Size, b: torch.Size) -> tuple[slice, ...]:
    """The leading slice two shapes of the same number of dimensions share.

    Called only with shapes of equal length; the caller handles other cases.
    """
    return tuple(slice(0, min(x, y)) for x, y in zip(a, b))


def fit_to(source: torch.Tensor, fresh: torch.Tensor, combine: Combine | None = None) -> torch.Tensor:
    """A tensor shaped like ``fresh`` holding ``source`` on the overlap and ``fresh`` elsewhere.

    Called for every inherited tensor when a fresh model of the child's architecture exists.
    ``combine(source_part, fresh_part)`` makes the overlap (shrink-perturb for transplanted
    weights); without it the overlap is a plain copy. Equal shapes return ``combine(source,
    fresh)`` (or a clone of ``source``) with no slicing at all, so inheritance in spaces whose
    shapes never change stays bit-identical. Never edits its arguments.
    """
    if source.shape == fresh.shape:
        return combine(source, fresh) if combine is not None else source.clone()
    if source.dim() != fresh.dim() or not is_continuous(source):
        # A (3, 4) kernel and a (3, 4, 5) kernel share no meaningful slice, and neither do an
        # index or a mask built for another width (sliced, an index may point past the layer's
        # end): start fresh.
        return fresh.clone()
    region = overlap(source.shape, fresh.shape)
    out = fresh.clone()
    out[region] = combine(source[region], fresh[region]) if combine is not None else source[region]
    return out


def reference_models(task: TaskProtocol, fresh: MemberState) -> dict[str, dict[str, torch.Tensor]]:
    """The fresh state dict every model key of a child must match.

    A shadow model (EMA, target copy) the task's fresh state does not carry is matched against
    the fresh copy of the model it shadows, which is what a freshly started shadow holds.
    """
    refs = dict(fresh.models)
    for shadow, source in task.shadow_models.items():
        if shadow not in refs and source in fresh.models:
            refs[shadow] = fresh.models[source]
    return refs


def adapt_to_architecture(task: TaskProtocol, state: MemberState, fresh: MemberState) -> list[str]:
    """Make ``state`` (edited in place) load strictly into the architecture ``fresh`` was built for.

    Called by the operators after a child's genome and tensors were assembled and whenever a
    fresh model of the child's architecture exists. Tensors that already fit are left untouched
    (not even copied); the others are sliced, taken fresh or dropped as the module docstring
    says, and their optimizer entries (looked up by the same model key and tensor name) are
    dropped. Model keys the fresh state does not know are left alone. Returns the adapted
    tensors as ``"model:tensor"`` strings.
    """
    adapted: list[str] = []
    for key, ref in reference_models(task, fresh).items():
        target = state.models.get(key)
        if target is None:
            continue
        changed = [name for name in target if name not in ref]
        for name in changed:
            del target[name]
        for name, fresh_tensor in ref.items():
            if name not in target:
                target[name] = fresh_tensor.clone()
                changed.append(name)
            elif target[name].shape != fresh_tensor.shape:
                target[name] = fit_to(target[name], fresh_tensor)
                changed.append(name)
        drop_moments(state, key, changed)
        adapted += [f"{key}:{name}" for name in changed]
    return adapted


def drop_moments(state: MemberState, model_key: str, names: list[str]) -> None:
    """Forget the optimizer state of ``names`` so those parameters restart with fresh moments.

    Moments of another shape cannot be loaded into a resized parameter, and a slice of them
    would describe gradients of a different layer; resetting matches what happens to a
    transplanted layer by default.
    """
    opt = state.optim.get(model_key)
    if opt is None:
        return
    for name in names:
        opt.pop(name, None)
