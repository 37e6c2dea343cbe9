"""The simulated workload under pbtnas (Ray backend) and under Ray Tune's PopulationBasedTraining
(issue 5, 4b): our wall time / Tune's.

Both run on one local Ray with the same CPUs per member, the same population, the same number
of steps (Tune: ``training_iteration``), perturbation after every step and the same quantile (tau
0.25). Tune searches a hyperparameter only (the learning rate; each trial keeps the architecture
it started with, drawn with the same stratified initialisation): it cannot mix architectures.
A Tune trial's step does exactly what a pbtnas member step does (``SimulatedTask.train_step`` +
``evaluate``: the architecture-dependent sleep plus the tiny model), and checkpoints the same
member file. Wall times include starting the workers on both sides.

Example (the figures in docs/distributed.md)::

    RAY_AUTH_MODE=disabled python benchmarks/ray_tune_comparison.py --populations 8 64 --steps 4
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")


def task_config(args) -> dict:
    return {"name": "simulated", "layers": 4, "width": 8, "step_seconds": args.step_seconds, "unevenness": args.unevenness, "batches_per_step": 2}


def run_pbtnas(population: int, args) -> float:
    from pbtnas.backends.ray_backend import RayBackend
    from pbtnas.config import config_from_dict
    from pbtnas.engine.runner import Runner

    config = config_from_dict(
        {
            "task": task_config(args),
            "population": population,
            "steps": args.steps,
            "seed": args.seed,
            "backend": "ray",
            "cpus_per_member": args.cpus_per_member,
            "keep_checkpoints": 1,
        }
    )
    root = Path(tempfile.mkdtemp(prefix="pbtnas-vs-tune-"))
    started = time.time()
    backend = RayBackend(cpus_per_member=args.cpus_per_member)
    try:
        Runner(config, root / "run", backend=backend, progress=False).start().run()
    finally:
        backend.close()
    wall = time.time() - started
    shutil.rmtree(root, ignore_errors=True)
    return wall


def run_tune(population: int, args) -> float:
    import numpy as np
    from ray import tune
    from ray.tune.schedulers import PopulationBasedTraining

    from pbtnas.engine import seeding
    from pbtnas.tasks import build_task

    task_cfg = task_config(args)
    genomes = build_task(task_cfg).space.stratified_population(population, seeding.rng_for(args.seed, seeding.INIT))

    class SimulatedTrainable(tune.Trainable):
        """One Tune trial = one member with a fixed architecture; PBT perturbs its lr."""

        def setup(self, config):
            from pbtnas.tasks import build_task as build

            self.cfg = dict(task_cfg)
            self.arch = config["arch"]
            self.genome = genomes[self.arch]
            self.state = build(self.cfg).init_state(self.genome, config["arch"])
            self.lr = config["lr"]
            self.i = 0

        def step(self):
            from pbtnas.tasks import build_task as build

            task = build({**self.cfg, "lr": self.lr})
            self.state, _ = task.train_step(self.genome, self.state, self.i, 1000 * self.arch + self.i)
            self.i += 1
            return {"fitness": task.evaluate(self.genome, self.state, 0)}

        def save_checkpoint(self, checkpoint_dir):
            from pbtnas.rundir.store import save_member

            save_member(os.path.join(checkpoint_dir, "member.pt"), self.genome, self.state, 0, {"i": self.i})
            return checkpoint_dir

        def load_checkpoint(self, checkpoint_dir):
            from pbtnas.rundir.store import load_member

            self.genome, self.state, meta = load_member(os.path.join(checkpoint_dir, "member.pt"))
            self.i = meta["i"]

        def reset_config(self, new_config):
            self.lr, self.arch = new_config["lr"], new_config["arch"]
            return True

    pbt = PopulationBasedTraining(
        time_attr="training_iteration",
        metric="fitness",
        mode="max",
        perturbation_interval=1,
        quantile_fraction=0.25,
        hyperparam_mutations={"lr": [1e-3, 3e-3, 1e-2, 3e-2]},
    )
    storage = tempfile.mkdtemp(prefix="tune-bench-")
    rng = np.random.default_rng(args.seed)
    lrs = [float(x) for x in rng.choice([1e-3, 3e-3, 1e-2, 3e-2], size=population)]
    started = time.time()
    tuner = tune.Tuner(
        tune.with_resources(SimulatedTrainable, {"cpu": args.cpus_per_member}),
        param_space={"arch": tune.grid_search(list(range(population))), "lr": tune.sample_from(lambda spec: lrs[spec.config.arch])},
        tune_config=tune.TuneConfig(scheduler=pbt, reuse_actors=True),
        run_config=tune.RunConfig(stop={"training_iteration": args.steps}, storage_path=storage, verbose=0),
    )
    results = tuner.fit()
    wall = time.time() - started
    errors = sum(1 for r in results if r.error)
    shutil.rmtree(storage, ignore_errors=True)
    if errors:
        print(f"  (Tune: {errors} trials errored)")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--populations", type=int, nargs="+", default=[8, 64])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--step-seconds", type=float, default=0.2)
    parser.add_argument("--unevenness", type=float, default=1.5)
    parser.add_argument("--cpus-per-member", type=float, default=0.125)
    parser.add_argument("--num-cpus", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import ray

    ray.init(address="local", num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    print(
        f"local Ray: {args.num_cpus} CPUs, {args.cpus_per_member} CPU per member; {args.steps} steps of "
        f"{args.step_seconds} s x [{1 - args.unevenness / 2:.2f}, {1 + args.unevenness / 2:.2f}]",
        flush=True,
    )
    print(f"{'population':>10} {'pbtnas s':>9} {'tune s':>8} {'pbtnas/tune':>11}", flush=True)
    try:
        for population in args.populations:
            ours = run_pbtnas(population, args)
            theirs = run_tune(population, args)
            print(f"{population:>10} {ours:>9.1f} {theirs:>8.1f} {ours / theirs:>11.2f}", flush=True)
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
