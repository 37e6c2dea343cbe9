"""Fingerprints of small fixed-seed runs on the paper's spaces, to show that a change to the engine
leaves their results bit-identical.

Runs gan (21 genes; in the default and in the channels_last memory format), gan-hard (72 genes),
RL from states (28 genes) and classification at a tiny budget on the in-process backend, and
makes per run a SHA-256 of ``summary.json`` (without the wall time) and of the journal's fitness
trace. The fingerprints of the last accepted code are committed in
``benchmarks/fingerprints.json`` together with the torch version and CPU capability they were
made with (floating-point results depend on both)::

    python benchmarks/identical_runs.py --check              # exit 1 naming the first run that moved
    python benchmarks/identical_runs.py --check --only gan   # some runs only
    python benchmarks/identical_runs.py --update             # accept the current results (commit the file)
    python benchmarks/identical_runs.py                      # only print the fingerprints

On a machine whose torch version or CPU capability differs from the recorded ones, ``--check``
says it cannot compare and exits 0: different kernels give different (equally valid) bits.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from pbtnas.config import config_from_dict
from pbtnas.engine.runner import Runner
from pbtnas.rundir.store import RunStore

FINGERPRINTS = Path(__file__).resolve().with_name("fingerprints.json")

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

# The memory format is pinned in every GAN entry: its default is a task option that may change,
# and a fingerprint must only move when the computation does, not when a default is flipped.
RUNS: dict[str, dict[str, Any]] = {
    "gan": {"name": "gan", **GAN_TINY, "channels_last": False},
    "gan-channels-last": {"name": "gan", **GAN_TINY, "channels_last": True},  # the GAN evidence runs' format
    "gan-hard": {"name": "gan", **GAN_TINY, "channels_last": False, "space": "gan-hard", "dataset": "stacked-mnist"},
    "rl": {"name": "rl", **RL_TINY},
    "classification": {"name": "classification", "dataset": "digits", "width": 4, "batches_per_step": 3},
}


def platform() -> dict[str, str]:
    """What the bits of a run depend on besides the code: torch's version and the CPU kernels
    it dispatches to (e.g. AVX2 against AVX512 change summation order)."""
    return {"torch": torch.__version__, "cpu_capability": str(torch.backends.cpu.get_cpu_capability())}


def digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def fingerprint(name: str, task: dict, root: str) -> dict:
    """Run one tiny fixed-seed search and reduce it to hashes plus its two headline figures."""
    config = config_from_dict({"task": task, "population": 4, "steps": 3, "seed": 7, "backend": "inprocess"})
    run_dir = os.path.join(root, name)
    summary = Runner(config, run_dir, progress=False).start().run()
    summary = {k: v for k, v in summary.items() if k != "wall_time_s"}
    trace = [(e["step"], e["slot"], e["uid"], e["fitness"]) for e in RunStore(run_dir).iter_events("member_trained")]
    return {
        "run": name,
        "summary_sha": digest(summary),
        "trace_sha": digest(trace),
        "final_metric": summary["final_metric"],
        "best_uid": summary["best_uid"],
    }


def read_committed(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {"platform": None, "runs": {}}
    except ValueError as exc:
        sys.exit(f"error: {path.name}: not JSON ({exc})")
    if not isinstance(data, dict) or not isinstance(data.get("runs"), dict):
        sys.exit(f"error: {path.name}: expected an object with 'platform' and 'runs'")
    return data


def check(names: list[str], path: Path) -> int:
    """0 when every named run reproduces its committed fingerprint (or the platform differs),
    1 at the first run that moved or has no committed fingerprint."""
    committed = read_committed(path)
    here = platform()
    if committed.get("platform") != here:
        print(f"cannot compare on this platform: {path.name} was made with {committed.get('platform')}, this machine has {here}")
        return 0
    for name in names:
        expected = committed["runs"].get(name)
        if expected is None:
            print(f"run {name}: no committed fingerprint in {path.name} (make it with --update --only {name})")
            return 1
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as root:
            found = fingerprint(name, RUNS[name], root)
        seconds = time.perf_counter() - t0
        moved = [key for key in expected if expected[key] != found.get(key)]
        if moved:
            key = moved[0]
            print(f"run {name}: fingerprint moved: {key} was {expected[key]!r}, now {found.get(key)!r} ({seconds:.1f} s)")
            return 1
        print(f"run {name}: identical ({seconds:.1f} s)", flush=True)
    print(f"all {len(names)} runs identical to {path.name}")
    return 0


def update(names: list[str], path: Path) -> int:
    """Rewrite the committed fingerprints of the named runs (all runs when the platform changed)."""
    committed = read_committed(path)
    here = platform()
    if committed.get("platform") not in (None, here) and set(names) != set(RUNS):
        print(
            f"error: {path.name} is of {committed['platform']}, this machine {here}: update all runs, so it describes one platform", file=sys.stderr
        )
        return 2
    runs = dict(committed["runs"]) if committed.get("platform") == here else {}
    with tempfile.TemporaryDirectory() as root:
        for name in names:
            t0 = time.perf_counter()
            runs[name] = fingerprint(name, RUNS[name], root)
            print(f"{json.dumps(runs[name])} ({time.perf_counter() - t0:.1f} s)", flush=True)
    data = {"platform": here, "runs": {name: runs[name] for name in RUNS if name in runs}}
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {path.name}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(RUNS), help="runs to make (default: all)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="compare with the committed fingerprints; exit 1 at the first that moved")
    mode.add_argument("--update", action="store_true", help="rewrite the committed fingerprints of the runs made")
    parser.add_argument("--file", type=Path, default=FINGERPRINTS, help="the fingerprints file (default: benchmarks/fingerprints.json)")
    args = parser.parse_args(argv)
    # One thread: the fingerprints must not depend on how many cores the machine has.
    torch.set_num_threads(1)
    os.environ.setdefault("PBTNAS_CACHE", tempfile.mkdtemp())
    names = list(args.only or RUNS)
    if args.check:
        return check(names, args.file)
    if args.update:
        return update(names, args.file)
    with tempfile.TemporaryDirectory() as root:
        for name in names:
            print(json.dumps(fingerprint(name, RUNS[name], root)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
