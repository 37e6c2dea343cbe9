"""Fingerprints of small fixed-seed runs on the paper's spaces, to show that a change to the engine
leaves their results bit-identical.

Runs gan (21 genes), gan-hard (72 genes), RL from states (28 genes) and classification at a tiny
budget on the in-process backend, and prints per run a SHA-256 of ``summary.json`` (without the
wall time) and of the journal's fitness trace. Run it before and after a change and compare::

    python benchmarks/identical_runs.py > before.txt
    ... change ...
    python benchmarks/identical_runs.py > after.txt && diff before.txt after.txt
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile

import torch

from pbtnas.config import config_from_dict
from pbtnas.engine.runner import Runner
from pbtnas.rundir.store import RunStore

GAN_TINY = dict(
    width=8,
    disc_width=8,
    latent_dim=12,
    batch_size=8,
    batches_per_step=10,
    n_critic=5,
    eval_samples=100,
    final_samples=200,
    classifier_epochs=1,
    classifier_width=8,
    stacked_size=500,
)
RL_TINY = dict(
    env="cheetah-run",
    hidden_dim=16,
    batch_size=16,
    frames_per_step=120,
    seed_frames=60,
    episode_frames=100,
    buffer_capacity=500,
    eval_episodes=1,
    final_eval_episodes=1,
    lr=1e-3,
)

RUNS = {
    "gan": {"name": "gan", **GAN_TINY},
    "gan-hard": {"name": "gan", **GAN_TINY, "space": "gan-hard", "dataset": "stacked-mnist"},
    "rl": {"name": "rl", **RL_TINY},
    "classification": {"name": "classification", "dataset": "digits", "width": 4, "batches_per_step": 3},
}


def fingerprint(name: str, task: dict, root: str) -> dict:
    config = config_from_dict({"task": task, "population": 4, "steps": 3, "seed": 7, "backend": "inprocess"})
    run_dir = os.path.join(root, name)
    summary = Runner(config, run_dir, progress=False).start().run()
    summary = {k: v for k, v in summary.items() if k != "wall_time_s"}
    trace = [(e["step"], e["slot"], e["uid"], e["fitness"]) for e in RunStore(run_dir).iter_events("member_trained")]
    digest = lambda obj: hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]  # noqa: E731
    return {
        "run": name,
        "summary_sha": digest(summary),
        "trace_sha": digest(trace),
        "final_metric": summary["final_metric"],
        "best_uid": summary["best_uid"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(RUNS), help="runs to make (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    os.environ.setdefault("PBTNAS_CACHE", tempfile.mkdtemp())
    with tempfile.TemporaryDirectory() as root:
        for name in args.only or RUNS:
            print(json.dumps(fingerprint(name, RUNS[name], root)), flush=True)


if __name__ == "__main__":
    main()
