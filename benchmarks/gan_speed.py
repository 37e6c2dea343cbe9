"""Discriminator iterations per CPU second of one GAN member (one torch thread), per width.

CPU seconds of this process, not wall time: on a loaded, shared machine that is what an idle
core would give (on cuda, process time is meaningless: use --device cpu).

Prints one line per configuration; also the cost of one fitness evaluation. Figures depend on
the machine and its load: run it on an idle machine before quoting them.

    python benchmarks/gan_speed.py [--space gan] [--dataset mnist] [--widths 16,32] [--iters 40]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--space", default="gan")
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--widths", default="16,24,32", help="generator=discriminator widths to try")
    ap.add_argument("--disc-widths", default="", help="discriminator widths (default: same as --widths)")
    ap.add_argument("--iters", type=int, default=40)
    ap.add_argument("--n-critic", type=int, default=5, help="D iterations per G update (CPU presets: 2)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--members", type=int, default=3, help="random genomes to average over")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--eval", action="store_true", help="also time one fitness evaluation")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    clock = time.perf_counter if args.device.startswith("cuda") else time.process_time
    os.environ.setdefault("PBTNAS_CACHE", tempfile.mkdtemp())
    from pbtnas.tasks import build_task

    widths = [int(w) for w in args.widths.split(",")]
    dwidths = [int(w) for w in args.disc_widths.split(",")] if args.disc_widths else widths
    for w, dw in zip(widths, dwidths):
        task = build_task({"name": "gan", "space": args.space, "dataset": args.dataset, "width": w, "disc_width": dw,
                           "batches_per_step": args.iters, "batch_size": args.batch_size, "n_critic": args.n_critic, "device": args.device,
                           "latent_dim": 60})
        genomes = task.space.stratified_population(max(2, args.members), np.random.default_rng(0))[: args.members]
        rates = []
        for i, g in enumerate(genomes):
            state = task.init_state(g, i)
            state, _ = task.train_step(g, state, 0, 0)  # warm-up (data loading, allocator)
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = clock()
            state, _ = task.train_step(g, state, 1, 1)
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            rates.append(args.iters / (clock() - t0))
        line = (f"space={args.space} dataset={args.dataset} width={w} disc_width={dw} batch={args.batch_size} "
                f"n_critic={args.n_critic} threads={args.threads} device={args.device}: {np.mean(rates):.2f} D-iters/s per member "
                f"(min {np.min(rates):.2f}, max {np.max(rates):.2f}, {len(rates)} genomes)")
        if args.eval:
            task.evaluate(genomes[-1], state, 0)  # builds the cached classifier and reference stats
            t0 = clock()
            task.evaluate(genomes[-1], state, 0)
            line += f"; one fitness evaluation ({task.options.eval_samples} samples): {clock() - t0:.2f} s"
        print(line, flush=True)


if __name__ == "__main__":
    main()
