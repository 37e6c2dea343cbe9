"""The real classification preset on local processes vs on a local Ray (issue 5, 4c).

Runs ``pbtnas run classification`` twice with the same seed and budget, once with
``--backend local --workers N`` and once with ``--backend ray --cpus-per-member C`` (a local Ray
started by the run), times each command end to end, and checks that both found the same best
network (same seed => same result on every backend).

Example (the figures in docs/distributed.md)::

    RAY_AUTH_MODE=disabled python benchmarks/ray_classification.py --steps 2 --workers 2 --cpus-per-member 1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time


def run(backend_args: list[str], args, out: str) -> tuple[float, dict]:
    cmd = [
        sys.executable,
        "-m",
        "pbtnas",
        "run",
        args.preset,
        "--steps",
        str(args.steps),
        "--seed",
        str(args.seed),
        "--out",
        out,
        "--quiet",
        *backend_args,
        *sum((["--set", s] for s in args.set), []),
    ]
    env = {**os.environ, "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "disabled")}
    started = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.time() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    with open(os.path.join(out, "summary.json")) as fh:
        return wall, json.load(fh)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="classification")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="local backend processes")
    parser.add_argument("--cpus-per-member", type=float, default=1.0, help="Ray CPUs per member")
    parser.add_argument("--set", action="append", default=[], help="extra --set overrides for both runs")
    parser.add_argument("--ray-first", action="store_true", help="run the Ray run first (check order effects)")
    args = parser.parse_args()

    root = tempfile.mkdtemp(prefix="pbtnas-cls-bench-")
    try:

        def local_run():
            return run(["--backend", "local", "--workers", str(args.workers)], args, os.path.join(root, "local"))

        def ray_run():
            return run(["--backend", "ray", "--cpus-per-member", str(args.cpus_per_member)], args, os.path.join(root, "ray"))

        if args.ray_first:
            ray_wall, ray = ray_run()
            local_wall, local = local_run()
        else:
            local_wall, local = local_run()
            ray_wall, ray = ray_run()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"preset {args.preset}, {args.steps} steps, seed {args.seed}, {os.cpu_count()} cores")
    print(f"{'backend':>24} {'command s':>10} {'run s':>8} {'best fitness':>13} {'final metric':>13}")
    for name, wall, s in ((f"local ({args.workers} processes)", local_wall, local), (f"ray ({args.cpus_per_member:g} CPU/member)", ray_wall, ray)):
        print(f"{name:>24} {wall:>10.1f} {s['wall_time_s']:>8.1f} {s['best_fitness']:>13.4f} {s['final_metric']:>13.4f}")
    same = local["best_genome"] == ray["best_genome"] and local["best_fitness"] == ray["best_fitness"]
    print(f"ray / local (command): {ray_wall / local_wall:.2f}; same best network: {same}")


if __name__ == "__main__":
    main()
