"""Scheduler efficiency of synchronous (with and without lookahead) vs asynchronous PBT-NAS on a local Ray.

efficiency = busy member-time / (wall time x slots), where busy member-time is the sum of the
member steps' own durations (``seconds`` of every ``member_trained`` event: load, train, evaluate,
save inside the worker), wall time runs from submitting the first step to the last result, and
slots = min(population, workers the Ray backend runs at once). Workers are started and warmed up
(one zero-length step each) before the clock starts, so the figure is about scheduling, not
about importing torch.

The workload is the ``simulated`` task: a step sleeps 0.25x..1.75x ``--step-seconds`` depending on
the architecture, so a synchronous generation waits for its slowest member.

Example (the figures in docs/distributed.md)::

    RAY_AUTH_MODE=disabled python benchmarks/scheduler_efficiency.py --populations 8 64 256 \\
        --cpus-per-member 0.125 --steps 4 --step-seconds 0.2

``--run RUN_DIR --workers W`` instead reads the busy fraction of a finished run from its journal:
sum of member-step seconds / (W x wall), wall from ``run_started`` to the last ``member_trained``
(so it includes starting the workers), e.g. after
``pbtnas run classification --population 8 --workers 2 --out RUN_DIR``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")


def measure(population: int, mode: str, args, backend) -> dict:
    from pbtnas.config import config_from_dict
    from pbtnas.engine.runner import Runner
    from pbtnas.rundir.store import RunStore

    config = config_from_dict(
        {
            "task": {
                "name": "simulated",
                "layers": 4,
                "width": 8,
                "step_seconds": args.step_seconds,
                "unevenness": args.unevenness,
                "batches_per_step": 2,
            },
            "population": population,
            "steps": args.steps,
            "seed": args.seed,
            "backend": "ray",
            "cpus_per_member": args.cpus_per_member,
            "mode": "async" if mode == "async" else "sync",
            "lookahead": mode == "sync",
            "keep_checkpoints": 1,
        }
    )
    run_dir = Path(tempfile.mkdtemp(prefix=f"pbtnas-bench-{mode}-{population}-"))
    runner = Runner(config, run_dir / "run", backend=backend, progress=False).start()
    started = time.time()
    runner.run()
    events = list(RunStore(run_dir / "run").iter_events("member_trained"))
    wall = max(e["time"] for e in events) - started
    busy = sum(e["seconds"] for e in events)
    slots = min(population, backend.slots)
    children = len(list(RunStore(run_dir / "run").iter_events("child_created")))
    shutil.rmtree(run_dir, ignore_errors=True)
    return {
        "population": population,
        "mode": mode,
        "slots": slots,
        "member_steps": len(events),
        "wall_s": wall,
        "busy_s": busy,
        "efficiency": busy / (wall * slots),
        "children": children,
    }


def busy_fraction(run_dir: str, workers: int) -> dict:
    """Busy fraction of a finished run, from its journal (see the module docstring)."""
    from pbtnas.rundir.store import RunStore

    events = list(RunStore(run_dir).events())
    started = next(e["time"] for e in events if e["event"] == "run_started")
    trained = [e for e in events if e["event"] == "member_trained"]
    wall = max(e["time"] for e in trained) - started
    busy = sum(e["seconds"] for e in trained)
    early = sum(1 for e in trained if e.get("started_early"))
    return {"member_steps": len(trained), "wall_s": wall, "busy_s": busy, "busy_fraction": busy / (workers * wall), "started_early": early}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--populations", type=int, nargs="+", default=[8, 64, 256])
    parser.add_argument(
        "--modes",
        nargs="+",
        default=["sync-barrier", "sync", "async"],
        help="sync-barrier: synchronous with lookahead off; sync: with lookahead (default)",
    )
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--step-seconds", type=float, default=0.2)
    parser.add_argument("--unevenness", type=float, default=1.5)
    parser.add_argument("--cpus-per-member", type=float, default=0.125)
    parser.add_argument("--num-cpus", type=int, default=2, help="CPUs of the local Ray")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run", help="a finished run directory: print its busy fraction from the journal instead")
    parser.add_argument("--workers", type=int, default=2, help="with --run: the workers it ran on")
    args = parser.parse_args()
    if args.run:
        r = busy_fraction(args.run, args.workers)
        print(
            f"{args.run}: {r['member_steps']} member steps ({r['started_early']} started early), busy {r['busy_s']:.1f} s, "
            f"wall {r['wall_s']:.1f} s x {args.workers} workers -> busy fraction {r['busy_fraction']:.3f}"
        )
        return

    import ray

    from pbtnas.backends.ray_backend import RayBackend

    ray.init(address="local", num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    backend = RayBackend(cpus_per_member=args.cpus_per_member)
    backend.start_workers()
    # Warm every worker up with real (zero-length) steps: first use imports the training code.
    warm = argparse.Namespace(**{**vars(args), "step_seconds": 0.0, "steps": 1})
    measure(max(4, backend.slots), "sync", warm, backend)
    print(
        f"local Ray: {args.num_cpus} CPUs, {args.cpus_per_member} CPU per member -> {backend.slots} workers; "
        f"step {args.step_seconds} s x [{1 - args.unevenness / 2:.2f}, {1 + args.unevenness / 2:.2f}] by "
        f"architecture; {args.steps} steps",
        flush=True,
    )
    print(f"{'population':>10} {'mode':>12} {'slots':>5} {'steps':>6} {'wall s':>8} {'busy s':>8} {'efficiency':>10} {'children':>8}", flush=True)
    try:
        for population in args.populations:
            for mode in args.modes:
                r = measure(population, mode, args, backend)
                print(
                    f"{r['population']:>10} {r['mode']:>12} {r['slots']:>5} {r['member_steps']:>6} "
                    f"{r['wall_s']:>8.1f} {r['busy_s']:>8.1f} {r['efficiency']:>10.3f} {r['children']:>8}",
                    flush=True,
                )
    finally:
        backend.close()
        ray.shutdown()


if __name__ == "__main__":
    main()
