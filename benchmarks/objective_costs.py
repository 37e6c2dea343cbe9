"""What several objectives add to a member step on the classification preset: the time the worker
spends measuring the three built-in costs (``params``, ``flops``, ``latency_ms``) after the one
evaluation every run does, on the first visit of an architecture (params and flops measured) and
a later one (cached; only the latency is timed again), next to a 1-objective member step (one
training step and its evaluation).

Usage: python benchmarks/objective_costs.py [--genomes 6] [--preset classification]
Prints one line per genome and the medians; timings depend on how busy the cores are.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from pbtnas.config import config_from_dict, load_config_source
from pbtnas.tasks import build_task, costs
from pbtnas.tasks.costs import measure_costs

NAMES = ["params", "flops", "latency_ms"]


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return (time.perf_counter() - start) * 1000.0, out


def with_costs(task, genome, state) -> dict:
    """What the worker does after training in a run with the three costs as objectives."""
    return {**task.score_values(genome, state, 11), **measure_costs(task, genome, state, NAMES)}


def one_genome(task, genome, seed: int) -> tuple[tuple[float, ...], dict]:
    """(train, 1-objective evaluation, 3-cost evaluation first visit, cached) ms, and the costs."""
    state = task.init_state(genome, seed)
    train_ms, (state, _) = timed(lambda: task.train_step(genome, state, 0, 7))
    one_ms, _ = timed(lambda: task.score(genome, state, 11))
    # the evaluation itself is the same with one objective or several (one call of evaluate):
    # what the engine adds is the measurement of the costs, timed alone (and inside with_costs)
    costs._BY_GENOME.clear()
    first_ms, values = timed(lambda: measure_costs(task, genome, state, NAMES))
    cached_ms, _ = timed(lambda: measure_costs(task, genome, state, NAMES))
    with_costs(task, genome, state)  # the worker's path runs
    return (train_ms, one_ms, first_ms, cached_ms), values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genomes", type=int, default=6)
    parser.add_argument("--preset", default="classification")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)  # as a worker with threads_per_member 1
    config = config_from_dict(load_config_source(args.preset))
    task = build_task(config.task)
    task.prepare()
    rng = np.random.default_rng(args.seed)
    rows = []
    print("genome  train_ms  eval_ms  costs_first_visit_ms  costs_cached_ms  params  flops  latency_ms")
    for i in range(args.genomes):
        row, v = one_genome(task, task.space.random_genome(rng), 1000 + i)
        rows.append(row)
        print(f"{i:6d}  " + "  ".join(f"{t:8.1f}" for t in row) + f"  {v['params']:.0f}  {v['flops']:.3g}  {v['latency_ms']:.2f}")
    train, one, first, cached = (statistics.median(col) for col in zip(*rows))
    step = train + one
    print(f"median member step (1 objective): {step:.1f} ms (train {train:.1f}, evaluate {one:.1f})")
    print(f"added by params+flops+latency_ms: {first:.1f} ms on an architecture's first visit ({100 * first / step:.2f}% of a step),")
    print(f"  {cached:.1f} ms later (params, flops cached; latency timed again) ({100 * cached / step:.2f}% of a step)")


if __name__ == "__main__":
    main()
