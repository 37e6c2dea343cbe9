"""Score the best-so-far generator of a GAN run directory with the task's final evaluation.

Useful for a run that is still going or was stopped: it reads ``best/member.pt`` and
``config.yaml`` and prints the final metrics (FD-clf on the test split, classifier IS, modes).

    python benchmarks/gan_score_run.py RUN_DIR [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os

import torch
import yaml


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    from pbtnas.rundir.store import load_member
    from pbtnas.tasks import build_task

    with open(os.path.join(args.run_dir, "config.yaml")) as fh:
        config = yaml.safe_load(fh)
    task = build_task(config["task"])
    genome, state, meta = load_member(os.path.join(args.run_dir, "best", "member.pt"))
    with open(os.path.join(args.run_dir, "best", "best.json")) as fh:
        best = json.load(fh)
    metrics = task.final_evaluate(genome, state, args.seed)
    print(
        json.dumps(
            {
                "run": args.run_dir,
                "algorithm": config.get("algorithm"),
                "best_step": best.get("step"),
                "best_fitness": best.get("fitness"),
                "d_iters": state.extra.get("d_iters"),
                **{k: (round(v, 3) if isinstance(v, float) else v) for k, v in metrics.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
