"""Train one GAN member for a CPU-time budget and print FD-clf after every step.

Times are CPU seconds of this process (one torch thread), so a shared, loaded machine still
gives the figures an idle core would.

Used to size the CPU presets: how many discriminator iterations a single member needs before
its EMA generator draws recognisable digits. Writes a sample grid after every step.

    python benchmarks/gan_learning_curve.py --seconds 240 --set n_critic=5 width=16 --out /tmp/curve
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
    ap.add_argument("--seconds", type=float, default=240)
    ap.add_argument("--genome-seed", type=int, default=0)
    ap.add_argument("--set", nargs="*", default=[], help="task options key=value")
    ap.add_argument("--out", default="")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("PBTNAS_CACHE", tempfile.mkdtemp())
    from pbtnas.config import parse_value
    from pbtnas.tasks import build_task

    opts = {"name": "gan"}
    for item in args.set:
        k, _, v = item.partition("=")
        opts[k] = parse_value(v)
    task = build_task(opts)
    genome = task.space.stratified_population(8, np.random.default_rng(args.genome_seed))[0]
    state = task.init_state(genome, 0)
    task.evaluate(genome, state, 0)  # classifier + reference stats outside the timed budget
    t_train = 0.0
    step = 0
    while t_train < args.seconds:
        t0 = time.process_time()
        state, m = task.train_step(genome, state, step, step)
        t_train += time.process_time() - t0
        t0 = time.process_time()
        fit = task.evaluate(genome, state, 0)
        t_eval = time.process_time() - t0
        print(
            f"{args.set} step={step} train_cpu_s={t_train:.0f} d_iters={state.extra['d_iters']} "
            f"g_updates={state.extra['g_updates']} d_loss={m['d_loss']:.3f} g_loss={m['g_loss']:.3f} "
            f"fd_clf={-fit:.2f} eval_cpu_s={t_eval:.1f}",
            flush=True,
        )
        if args.out:
            task.sample_grid(genome, state, os.path.join(args.out, f"step{step:03d}.png"), 0)
        step += 1


if __name__ == "__main__":
    main()
