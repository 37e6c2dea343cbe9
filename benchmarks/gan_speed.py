"""Discriminator iterations per CPU second of one GAN member (one torch thread), per width.

CPU seconds of this process, not wall time: on a loaded, shared machine that is what an idle
core would give (on cuda, process time is meaningless: use --device cpu).

Prints one line per configuration; also the cost of one fitness evaluation. Figures depend on
the machine and its load: run it on an idle machine before quoting them.

``--flops`` also counts the floating-point operations of one discriminator iteration (forward and
backward of both networks, the generator's update spread over its ``n_critic`` iterations) with
``torch.utils.flop_counter`` on the same genomes, and prints the achieved FLOP rate as a fraction
of what the same thread count reaches on a 1024 x 1024 float32 matmul.

    python benchmarks/gan_speed.py [--space gan] [--dataset mnist] [--widths 16,32] [--iters 40] [--flops]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch


def matmul_rate(clock, device: str = "cpu", seconds: float = 2.0) -> tuple[float, int]:
    """FLOP/s of a float32 matmul (1024 x 1024 on CPU with the current thread count, CPU time;
    4096 x 4096 on a GPU, wall time) and the size used."""
    size = 4096 if device.startswith("cuda") else 1024
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    for _ in range(3):
        a @ b
    sync()
    n, t0 = 0, clock()
    while clock() - t0 < seconds:
        a @ b
        n += 1
        sync()
    return n * 2 * size**3 / (clock() - t0), size


def flops_per_iter(task, genome, state, iters: int) -> float:
    """FLOPs of one discriminator iteration, counted over a whole ``train_step`` of ``iters``."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        task.train_step(genome, state, 2, 2)
    return counter.get_total_flops() / iters


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--space", default="gan")
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--data-root", default="", help="task.data_root (cifar10, stl10)")
    ap.add_argument("--latent-dim", type=int, default=60)
    ap.add_argument("--widths", default="16,24,32", help="generator=discriminator widths to try")
    ap.add_argument("--disc-widths", default="", help="discriminator widths (default: same as --widths)")
    ap.add_argument("--iters", type=int, default=40)
    ap.add_argument("--n-critic", type=int, default=5, help="D iterations per G update (CPU presets: 2)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--members", type=int, default=3, help="random genomes to average over")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--eval", action="store_true", help="also time one fitness evaluation")
    ap.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="task.channels_last (the default); --no-channels-last trains in the contiguous format (not bit-identical)",
    )
    ap.add_argument("--flops", action="store_true", help="count FLOPs per iteration and compare with a matmul's rate")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    clock = time.perf_counter if args.device.startswith("cuda") else time.process_time
    os.environ.setdefault("PBTNAS_CACHE", tempfile.mkdtemp())
    from pbtnas.tasks import build_task

    widths = [int(w) for w in args.widths.split(",")]
    dwidths = [int(w) for w in args.disc_widths.split(",")] if args.disc_widths else widths
    for w, dw in zip(widths, dwidths):
        task = build_task(
            {
                "name": "gan",
                "space": args.space,
                "dataset": args.dataset,
                "width": w,
                "disc_width": dw,
                "batches_per_step": args.iters,
                "batch_size": args.batch_size,
                "n_critic": args.n_critic,
                "device": args.device,
                "latent_dim": args.latent_dim,
                "data_root": args.data_root,
                "channels_last": args.channels_last,
            }
        )
        genomes = task.space.stratified_population(max(2, args.members), np.random.default_rng(0))[: args.members]
        rates, flops = [], []
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
            if args.flops:
                flops.append(flops_per_iter(task, g, state, args.iters))
        line = (
            f"space={args.space} dataset={args.dataset} width={w} disc_width={dw} batch={args.batch_size} "
            f"n_critic={args.n_critic} threads={args.threads} device={args.device} channels_last={args.channels_last}: "
            f"{np.mean(rates):.2f} D-iters/s per member "
            f"(min {np.min(rates):.2f}, max {np.max(rates):.2f}, {len(rates)} genomes)"
        )
        if args.flops:
            peak, size = matmul_rate(clock, args.device)
            achieved = [f * r for f, r in zip(flops, rates)]
            line += (
                f"; {np.mean(flops) / 1e6:.1f} MFLOP per D-iter (min {np.min(flops) / 1e6:.1f}, max "
                f"{np.max(flops) / 1e6:.1f}); {np.mean(achieved) / 1e9:.2f} GFLOP/s = "
                f"{100 * np.mean(achieved) / peak:.0f}% of a {size}x{size} matmul's {peak / 1e9:.1f} GFLOP/s "
                f"(per genome {', '.join(f'{100 * a / peak:.0f}%' for a in achieved)})"
            )
        if args.device.startswith("cuda"):
            line += f"; peak GPU memory allocated {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB"
        if args.eval:
            task.evaluate(genomes[-1], state, 0)  # builds the cached classifier and reference stats
            t0 = clock()
            task.evaluate(genomes[-1], state, 0)
            line += f"; one fitness evaluation ({task.options.eval_samples} samples): {clock() - t0:.2f} s"
        print(line, flush=True)


if __name__ == "__main__":
    main()
