"""Environment steps and updates per second of one RL member (one torch thread).

Prints, per environment: raw environment agent steps/s (random actions, action repeat
included), acting steps/s (actor forward + environment), and updates/s of the DrQ-v2-style
update for a few random genomes at the given hidden width and batch size. Run::

    python benchmarks/rl_speed.py --envs cheetah-run walker-walk --hidden 128 --batch 128

Timings depend on the machine and on whatever else runs on it; they are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from pbtnas.tasks.rl.agent import update
from pbtnas.tasks.rl.replay import ReplayBuffer
from pbtnas.tasks.rl.task import RLOptions, RLTask


def measure(env_name: str, hidden: int, batch: int, genomes: int, updates: int, pixels: bool) -> dict:
    opts = RLOptions(env=env_name, hidden_dim=hidden, batch_size=batch, pixels=pixels, image_size=84, encoder_channels=32)
    task = RLTask(opts)
    env = task.env()
    rng = np.random.default_rng(0)
    dtype = torch.uint8 if pixels else torch.float32
    buf = ReplayBuffer(20_000, env.obs_shape, dtype, env.action_dim, opts.frame_stack if pixels else 1)
    obs = env.reset(0)
    buf.add_first(obs)
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < 3.0:
        a = rng.uniform(-1, 1, env.action_dim)
        obs, r, d, last = env.step(a)
        buf.add(a, r, d, obs)
        n += 1
        if last:
            buf.add_first(env.reset(n))
    env_rate = n / (time.perf_counter() - t0)
    rates, act_rates = [], []
    for k in range(genomes):
        genome = task.space.random_genome(np.random.default_rng(k))
        state = task.init_state(genome, k)
        nets = task.load_nets(genome, state, train=True)
        gen = torch.Generator().manual_seed(k)
        update(nets, buf.sample(batch, 3, 0.99, rng), 0.5, gen, tau=0.01, stddev_clip=0.3, augment_pad=4 if pixels else 0)
        t0 = time.perf_counter()
        for _ in range(updates):
            update(nets, buf.sample(batch, 3, 0.99, rng), 0.5, gen, tau=0.01, stddev_clip=0.3, augment_pad=4 if pixels else 0)
        rates.append(updates / (time.perf_counter() - t0))
        module = task.build_module(genome, state)
        x = torch.as_tensor(task.env().reset(1)).unsqueeze(0) if not pixels else torch.zeros(1, *module.obs_shape)
        t0, m = time.perf_counter(), 0
        with torch.no_grad():
            while time.perf_counter() - t0 < 1.0:
                a = module(x.float())[0].numpy()
                env.step(a)
                m += 1
        act_rates.append(m / (time.perf_counter() - t0))
    return {
        "env": env_name,
        "pixels": pixels,
        "hidden": hidden,
        "batch": batch,
        "env_agent_steps_per_s": round(env_rate),
        "acting_steps_per_s": round(float(np.mean(act_rates))),
        "updates_per_s": [round(r, 1) for r in rates],
        "updates_per_s_mean": round(float(np.mean(rates)), 1),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=["cheetah-run", "walker-walk"])
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--genomes", type=int, default=4)
    parser.add_argument("--updates", type=int, default=40)
    parser.add_argument("--pixels", action="store_true", help="measure the pixel agent (84x84, 32 channels)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores, torch threads {args.threads}")
    for name in args.envs:
        print(measure(name, args.hidden, args.batch, args.genomes, args.updates, args.pixels))
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
