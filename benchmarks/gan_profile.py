"""Where a GAN member's step spends its time: ``torch.profiler`` over one training step and one
fitness evaluation of the ``gan-mnist-small`` task (one thread), top operators by self CPU time.

    python benchmarks/gan_profile.py [--preset gan-mnist-small] [--members 2] [--top 12] [--set channels_last=false]

Prints the CPU seconds of the training step and of the evaluation, then the profile's table.
Run it on otherwise idle cores; the shares hold under load, the seconds do not.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="gan-mnist-small")
    ap.add_argument("--members", type=int, default=2, help="genomes of the stratified population to profile")
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--sort", default="self_cpu_time_total")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a task option, e.g. channels_last=false")
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.environ.setdefault("PBTNAS_CACHE", os.path.join(tempfile.gettempdir(), "pbtnas-profile-cache"))
    import yaml
    from torch.profiler import ProfilerActivity, profile

    from pbtnas.tasks import build_task
    from pbtnas.tasks.presets import get_preset

    options = get_preset(args.preset)["task"]
    for item in args.set:
        key, _, value = item.partition("=")
        options[key] = yaml.safe_load(value)
    task = build_task(options)
    task.prepare()
    genomes = task.space.stratified_population(8, np.random.default_rng(0))[: args.members]
    states = []
    for i, genome in enumerate(genomes):  # warm-up: data, allocator, FD classifier
        state, _ = task.train_step(genome, task.init_state(genome, i), 0, i)
        task.evaluate(genome, state, 0)
        states.append(state)
    train_s = eval_s = 0.0
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for i, (genome, state) in enumerate(zip(genomes, states)):
            t0 = time.process_time()
            task.train_step(genome, state, 1, 100 + i)
            t1 = time.process_time()
            task.evaluate(genome, state, 1)
            train_s += t1 - t0
            eval_s += time.process_time() - t1
    n = len(genomes)
    per_member = f"training step {train_s / n:.2f} CPU s, fitness evaluation {eval_s / n:.2f} CPU s"
    print(f"{args.preset} {' '.join(args.set)}: per member, {per_member} (under the profiler)")
    print(prof.key_averages().table(sort_by=args.sort, row_limit=args.top, max_name_column_width=48))


if __name__ == "__main__":
    main()
