"""The built-in costs of a member's network, measured where the member trains
(docs/multi-objective.md): ``params`` (trainable parameters), ``flops`` (forward FLOPs for the
task's ``example_input(1)``, counted by ``torch.utils.flop_counter``) and ``latency_ms`` (median
wall time of forward passes on the member's device).

``params`` and ``flops`` depend on the genome alone, so each process measures them once per
architecture (:data:`_BY_GENOME`); ``latency_ms`` is timed anew at every evaluation and is noisy:
it moves with whatever else the machine runs.
"""

from __future__ import annotations

import json
import statistics
import time

import torch

from pbtnas.search.space import Genome
from pbtnas.search.state import MemberState

#: forward passes timed per latency measurement (after the warm-up ones); their median is kept
LATENCY_RUNS = 10
LATENCY_WARMUP = 2
#: (task class, genome) -> {"params": ..., "flops": ...} of this process
_BY_GENOME: dict[tuple[str, str], dict[str, float]] = {}
_CACHE_LIMIT = 4096


def measure_costs(task, genome: Genome, state: MemberState, names: list[str]) -> dict[str, float]:
    """The built-in costs among ``names`` of the member's deployed network (``build_module``)."""
    wanted = [n for n in ("params", "flops", "latency_ms") if n in names]
    if not wanted:
        return {}
    key = (f"{type(task).__module__}.{type(task).__qualname__}", json.dumps(genome, sort_keys=True, default=str))
    fixed = _BY_GENOME.get(key, {})
    out: dict[str, float] = {n: fixed[n] for n in wanted if n in fixed}
    missing = [n for n in wanted if n not in out]
    if not missing:
        return out
    module = task.build_module(genome, state).eval()
    if "params" in missing:
        out["params"] = float(sum(p.numel() for p in module.parameters() if p.requires_grad))
    if "flops" in missing or "latency_ms" in missing:
        device = next((p.device for p in module.parameters()), task.device)
        x = _to(task.example_input(1), device)
        if "flops" in missing:
            out["flops"] = float(count_flops(module, x))
        if "latency_ms" in missing:
            out["latency_ms"] = latency_ms(module, x, device)
    if len(_BY_GENOME) >= _CACHE_LIMIT:
        _BY_GENOME.clear()
    _BY_GENOME[key] = {**fixed, **{n: out[n] for n in ("params", "flops") if n in out}}
    return out


def _to(x, device):
    if torch.is_tensor(x):
        return x.to(device)
    if isinstance(x, (tuple, list)):
        return type(x)(_to(v, device) for v in x)
    return x


def _call(module: torch.nn.Module, x):
    return module(*x) if isinstance(x, tuple) else module(x)


def count_flops(module: torch.nn.Module, x) -> int:
    """Forward FLOPs of ``module`` on ``x`` (a multiply-add counts 2), as torch counts them."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        _call(module, x)
    return int(counter.get_total_flops())


def latency_ms(module: torch.nn.Module, x, device: torch.device) -> float:
    """Median milliseconds of :data:`LATENCY_RUNS` forward passes on ``x`` after
    :data:`LATENCY_WARMUP` untimed ones (GPU work waited for)."""
    cuda = device.type == "cuda"
    times = []
    with torch.no_grad():
        for i in range(LATENCY_WARMUP + LATENCY_RUNS):
            if cuda:
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            _call(module, x)
            if cuda:
                torch.cuda.synchronize(device)
            if i >= LATENCY_WARMUP:
                times.append((time.perf_counter() - start) * 1000.0)
    return float(statistics.median(times))
