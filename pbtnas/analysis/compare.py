"""Paper-style comparisons: algorithms x seeds with the same budget, a mean ± std table and a
one-sided Wilcoxon signed-rank test on seed-paired runs. A comparison of multi-objective runs adds
each run's final hypervolume, measured from one reference point for all of them
(:mod:`pbtnas.analysis.front_compare`), and the same test on it.

Every (algorithm, seed) pair is one ordinary run directory ``OUT/runs/<algorithm>-s<seed>``, so
a comparison that was interrupted continues where it stopped (finished runs are reused,
unfinished ones resumed) and every run can be inspected with ``pbtnas report``. Runs with the
same seed start from the same stratified population, which is what makes them *paired*.

Outputs in ``OUT``: ``table.md`` and ``table.csv`` (one row per algorithm), ``runs.csv`` (one row
per run) and ``compare.json`` (everything, machine-readable).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from pbtnas.analysis.front_compare import front_values, shared_hypervolumes
from pbtnas.config import ALGORITHMS, RunConfig, config_from_dict
from pbtnas.errors import ConfigError, require
from pbtnas.options import did_you_mean
from pbtnas.rundir.atomic import atomic_write_bytes, atomic_write_json
from pbtnas.rundir.store import RunStore
from pbtnas.search.objectives import Objective, is_multi, parse_constraints, parse_objectives
from pbtnas.search.schedules import schedule_of_algorithm

#: algorithm sets of the paper's two tables
TABLE_BASELINES = ("pbtnas", "random", "mutation")
TABLE_ABLATIONS = ("pbtnas", "sp-1-0", "sp-0-1", "no-mixing")


def parse_algorithms(text: str) -> list[str]:
    """``"pbtnas,random,ablations"`` -> algorithm names (``baselines`` / ``ablations`` expand)."""
    out: list[str] = []
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        names = {"baselines": TABLE_BASELINES, "ablations": TABLE_ABLATIONS}.get(item, (item,))
        for name in names:
            if name not in ALGORITHMS:
                raise ConfigError(
                    f"unknown algorithm {name!r} in --algorithms{did_you_mean([name], ALGORITHMS)}; "
                    f"known: {', '.join(ALGORITHMS)}, or the groups 'baselines', 'ablations'"
                )
            if name not in out:
                out.append(name)
    if not out:
        raise ConfigError("--algorithms names no algorithm")
    return out


def _require_schedules(algorithms: list[str]) -> None:
    """What the algorithms' own schedules need installed (optuna for bohb and nsga2), checked
    before any run rather than after the others have trained."""
    for algorithm in algorithms:
        entry = schedule_of_algorithm(algorithm)
        if entry is not None and entry.requires is not None:
            require(*entry.requires)


@dataclass
class RunResult:
    """The figures of one finished run that a comparison uses."""

    algorithm: str
    seed: int
    run_dir: str
    final_metric: float | None
    best_fitness: float | None
    wall_time_s: float | None
    finished: bool
    #: a multi-objective run: its feasible front members' final objective values
    front: list[dict] | None = None
    #: a multi-objective run: its front's hypervolume from the comparison's shared reference point
    hypervolume: float | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "front"}


@dataclass
class Comparison:
    """Per-run results plus the metric's name and direction; renders the tables."""

    metric: str
    fitness_name: str
    higher_is_better: bool
    reference: str
    algorithms: list[str]
    seeds: list[int]
    runs: list[RunResult] = field(default_factory=list)
    #: where the direction came from, as the table says it ("declared by the task", ...)
    direction_source: str = ""
    #: a multi-objective comparison's objectives (empty: one objective, no hypervolume columns)
    objectives: list[Objective] = field(default_factory=list)
    #: the shared reference point every run's hypervolume is measured from (front_compare)
    hypervolume_reference: dict = field(default_factory=dict)

    def measure_fronts(self) -> None:
        """Each finished run's final hypervolume from one reference point over all their fronts."""
        if not self.objectives:
            return
        fronts = {i: r.front for i, r in enumerate(self.runs) if r.finished and r.front is not None}
        self.hypervolume_reference, values = shared_hypervolumes(fronts, self.objectives)
        for i, run in enumerate(self.runs):
            run.hypervolume = values.get(i)

    def values(self, algorithm: str, key: str = "final_metric") -> dict[int, float]:
        out = {}
        for r in self.runs:
            value = getattr(r, key)
            if r.algorithm == algorithm and r.finished and value is not None and math.isfinite(value):
                out[r.seed] = float(value)
        return out

    def rows(self) -> list[dict]:
        """One row per algorithm: n, mean, std (sample std, ddof=1) of the final metric and of the
        best search fitness, mean wall time, and the paired test against the reference."""
        ref = self.values(self.reference)
        rows = []
        for algo in self.algorithms:
            vals = self.values(algo)
            fit = self.values(algo, "best_fitness")
            wall = self.values(algo, "wall_time_s")
            row = {
                "algorithm": algo,
                "n": len(vals),
                **_stats(vals.values(), "metric"),
                **_stats(fit.values(), "fitness"),
                "wall_time_s": float(np.mean(list(wall.values()))) if wall else None,
            }
            if algo != self.reference:
                row.update(paired_wilcoxon(ref, vals, self.higher_is_better))
            else:
                row.update({"pairs": None, "statistic": None, "p_value": None})
            if self.objectives:  # the front's hypervolume per seed, higher is better, same test
                hv = self.values(algo, "hypervolume")
                row.update(_stats(hv.values(), "hv"))
                test = paired_wilcoxon(self.values(self.reference, "hypervolume"), hv, True) if algo != self.reference else {}
                row.update({f"hv_{k}": test.get(k) for k in ("pairs", "statistic", "p_value")})
            rows.append(row)
        return rows

    # -- rendering ----------------------------------------------------------------------------
    def markdown(self, digits: int = 4) -> str:
        arrow = "higher is better" if self.higher_is_better else "lower is better"
        if self.direction_source:
            arrow += f", {self.direction_source}"
        lines = [
            f"| algorithm | {self.metric} ({arrow}) | best {self.fitness_name} during search | runs | "
            f"p ({self.reference} better, one-sided Wilcoxon) | mean wall time (s) |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        if self.objectives:
            lines[0] += f" hypervolume ({', '.join(o.name + ':' + o.direction for o in self.objectives)}; higher is better) | p (hypervolume) |"
            lines[1] += " --- | --- |"
        for row in self.rows():
            p_text = self._p_text(row, "")
            wall = "-" if row["wall_time_s"] is None else f"{row['wall_time_s']:.0f}"
            line = f"| {row['algorithm']} | {_pm(row, 'metric', digits)} | {_pm(row, 'fitness', digits)} | {row['n']} | {p_text} | {wall} |"
            if self.objectives:
                line += f" {_pm(row, 'hv', digits)} | {self._p_text(row, 'hv_')} |"
            lines.append(line)
        if self.objectives and self.hypervolume_reference:
            point = ", ".join(f"{k} = {v:.6g}" for k, v in self.hypervolume_reference.items())
            lines.append(
                f"\nHypervolume of each run's final Pareto front (feasible members, final values), all from one reference point: {point} "
                "(the worst value of the union of the runs' fronts, moved 10% of its range further)."
            )
        return "\n".join(lines) + "\n"

    def _p_text(self, row: dict, prefix: str) -> str:
        if row["algorithm"] == self.reference:
            return "reference"
        p = row.get(f"{prefix}p_value")
        return "n/a" if p is None or (isinstance(p, float) and math.isnan(p)) else f"{p:.3g} ({row[f'{prefix}pairs']} pairs)"

    def csv(self) -> str:
        buf = io.StringIO()
        keys = ["algorithm", "n", "metric_mean", "metric_std", "fitness_mean", "fitness_std", "wall_time_s", "pairs", "statistic", "p_value"]
        if self.objectives:
            keys += ["hv_mean", "hv_std", "hv_pairs", "hv_statistic", "hv_p_value"]
        writer = csv.DictWriter(buf, fieldnames=keys, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in self.rows():
            writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in keys})
        return buf.getvalue()

    def runs_csv(self) -> str:
        buf = io.StringIO()
        keys = ["algorithm", "seed", "final_metric", "best_fitness", "wall_time_s", "finished", "run_dir"]
        if self.objectives:
            keys.insert(4, "hypervolume")
        writer = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
        writer.writeheader()
        for r in self.runs:
            writer.writerow({k: getattr(r, k) for k in keys})
        return buf.getvalue()

    def to_dict(self) -> dict:
        return {
            "metric": self.metric,
            "fitness_name": self.fitness_name,
            "higher_is_better": self.higher_is_better,
            "direction_source": self.direction_source,
            **(
                {
                    "objectives": [{"name": o.name, "direction": o.direction} for o in self.objectives],
                    "hypervolume_reference": self.hypervolume_reference,
                }
                if self.objectives
                else {}
            ),
            "reference": self.reference,
            "algorithms": self.algorithms,
            "seeds": self.seeds,
            "rows": self.rows(),
            "runs": [r.to_dict() for r in self.runs],
        }

    def write(self, out: str | Path) -> None:
        out = Path(out)
        self.measure_fronts()
        atomic_write_bytes(out / "table.md", self.markdown().encode())
        atomic_write_bytes(out / "table.csv", self.csv().encode())
        atomic_write_bytes(out / "runs.csv", self.runs_csv().encode())
        atomic_write_json(out / "compare.json", self.to_dict())


def _stats(values, prefix: str) -> dict:
    values = [float(v) for v in values]
    if not values:
        return {f"{prefix}_mean": None, f"{prefix}_std": None}
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return {f"{prefix}_mean": float(np.mean(values)), f"{prefix}_std": std}


def _pm(row: dict, prefix: str, digits: int) -> str:
    mean, std = row.get(f"{prefix}_mean"), row.get(f"{prefix}_std")
    if mean is None:
        return "-"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def paired_wilcoxon(reference: dict[int, float], other: dict[int, float], higher_is_better: bool) -> dict:
    """One-sided Wilcoxon signed-rank test that the reference is better than ``other`` on the
    seeds both finished. With n pairs the smallest attainable p is 1/2**n (0.125 for 3 seeds)."""
    from scipy.stats import wilcoxon

    seeds = sorted(set(reference) & set(other))
    result: dict[str, float | int | None] = {"pairs": len(seeds), "statistic": None, "p_value": None}
    if not seeds:
        return result
    a = np.array([reference[s] for s in seeds])
    b = np.array([other[s] for s in seeds])
    diff = a - b if higher_is_better else b - a
    if np.all(diff == 0):
        result["p_value"] = float("nan")  # every pair tied: the test is undefined
        return result
    test = wilcoxon(diff, alternative="greater", zero_method="wilcox")
    result["statistic"] = float(test.statistic)
    result["p_value"] = float(test.pvalue)
    return result


def metric_direction(fitness_name: str, final_metric_name: str, declared: bool | None = None) -> bool:
    """Whether the final metric is higher-is-better (see :func:`direction_of`)."""
    return direction_of(fitness_name, final_metric_name, declared)[0]


def direction_of(fitness_name: str, final_metric_name: str, declared: bool | None = None) -> tuple[bool, str]:
    """``(higher_is_better, where that came from)`` for the final metric.

    The task's declaration (``Task.final_metric_higher_is_better``) comes first. Undeclared, a
    final metric that is the fitness itself is higher-is-better (fitness always is); otherwise the
    direction is guessed from the fitness name: a negated quantity (``-fd_clf``) reports the plain
    quantity, lower being better. The guess cannot see that ``test_mse`` is an error when the
    fitness is ``neg_val_mse``: tasks declare it."""
    if declared is not None:
        return bool(declared), "declared by the task"
    if final_metric_name == fitness_name:
        return True, "the final metric is the fitness"
    return not fitness_name.startswith("-"), "guessed from the fitness name (the task does not declare it)"


def run_dir_for(out: str | Path, algorithm: str, seed: int) -> Path:
    return Path(out) / "runs" / f"{algorithm}-s{seed}"


def read_result(algorithm: str, seed: int, run_dir: Path, out: Path | None = None) -> RunResult:
    """The summary figures of one run (``finished`` False while it has no summary)."""
    name = str(run_dir.relative_to(out)) if out is not None else str(run_dir)
    summary = RunStore(run_dir).read_summary() if run_dir.is_dir() else None
    if not summary:
        return RunResult(algorithm, seed, name, None, None, None, False)
    return RunResult(
        algorithm,
        seed,
        name,
        _num(summary.get("final_metric")),
        _num(summary.get("best_fitness")),
        _num(summary.get("wall_time_s")),
        bool(summary.get("finished")),
        front_values(summary),
    )


def _num(value) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def compare(
    base: dict,
    algorithms: list[str],
    seeds: list[int],
    out: str | Path,
    run_fn: Callable[[RunConfig, Path], dict] | None = None,
    higher_is_better: bool | None = None,
    log: Callable[[str], None] = lambda s: None,
) -> Comparison:
    """Run every (algorithm, seed) with the budget of ``base`` (a config dict) and tabulate.

    ``run_fn(config, run_dir)`` runs or resumes one run and returns its summary; the default
    uses :class:`~pbtnas.engine.runner.Runner`. Finished runs found in ``out`` are reused as they are,
    unfinished ones resumed; a folder holding a run of other settings is refused.
    """
    from pbtnas.tasks import build_task
    from pbtnas.tasks.devices import prepare_to_train

    out = Path(out)
    run_fn = run_fn or _run_one
    configs = {}
    for algo in algorithms:
        for seed in seeds:
            configs[algo, seed] = config_from_dict({**base, "algorithm": algo, "seed": seed})
    _require_schedules(algorithms)
    first = configs[algorithms[0], seeds[0]]
    task = build_task(first.task)
    found = {(algo, seed): read_result(algo, seed, run_dir_for(out, algo, seed), out) for algo, seed in configs}
    # what a run checks before it starts (device, data, environment), before the folder is made:
    # a comparison that cannot run leaves nothing behind (one whose runs all finished needs none)
    if not all(result.finished for result in found.values()):
        prepare_to_train(first, task)
    out.mkdir(parents=True, exist_ok=True)
    if higher_is_better is None:
        declared = task.final_metric_higher_is_better
        higher_is_better, source = direction_of(task.fitness_name, task.final_metric_name, declared)
    else:
        source = "as stated for this comparison"
    objectives = parse_objectives(list(first.objectives))
    comparison = Comparison(
        task.final_metric_name,
        task.fitness_name,
        higher_is_better,
        algorithms[0],
        list(algorithms),
        list(seeds),
        direction_source=source,
        objectives=objectives if is_multi(objectives, parse_constraints(list(first.constraints))) else [],
    )
    total = len(configs)
    for i, ((algo, seed), config) in enumerate(configs.items(), 1):
        run_dir = run_dir_for(out, algo, seed)
        check_same_budget(config, run_dir)
        result = found[algo, seed]
        if result.finished:
            log(f"[{i}/{total}] {algo} seed {seed}: reusing finished run {run_dir}")
        else:
            log(f"[{i}/{total}] {algo} seed {seed}: running in {run_dir}")
            run_fn(config, run_dir)
            result = read_result(algo, seed, run_dir, out)
            log(f"[{i}/{total}] {algo} seed {seed}: {comparison.metric} = {result.final_metric}")
        comparison.runs.append(result)
        comparison.write(out)  # the table grows as runs finish
    return comparison


#: config keys that make two runs comparable (execution settings such as workers may differ)
BUDGET_KEYS = (
    "algorithm",
    "seed",
    "population",
    "steps",
    "task",
    "tau",
    "p_donor",
    "sp_lambda",
    "sp_gamma",
    "donor_moments",
    "exploit_every_first_half",
    "final_selection",
    "mode",
    "sp_buffers",
    "bohb_eta",
    "nsga2_trial_steps",
    "objectives",
    "constraints",
)


def check_same_budget(config: RunConfig, run_dir: Path) -> None:
    """Refuse to reuse or resume a run folder that holds a run of another budget or task."""
    store = RunStore(run_dir)
    if not store.config_path.is_file():
        return
    saved, wanted = store.read_config() or {}, config.to_dict()
    differ = [k for k in BUDGET_KEYS if _budget_value(saved, k) != _budget_value(wanted, k)]
    if differ:
        raise ConfigError(f"{run_dir} holds a run with other settings ({', '.join(differ)}); use another --out or delete that folder")


def _budget_value(config: dict, key: str):
    value = config.get(key)
    if key == "task" and isinstance(value, dict):
        from pbtnas.tasks import portable_task_config  # a task file is recorded by its absolute path

        return {k: v for k, v in portable_task_config(value).items() if k != "device"}
    if key == "sp_buffers" and value is None:
        return "all"  # runs made before the option existed did what "all" does
    if key == "bohb_eta" and value is None:
        return 3  # runs made before the option existed
    if key == "nsga2_trial_steps" and value is None:
        return 0  # runs made before the option existed
    if key == "objectives" and value is None:
        return ["fitness"]  # runs made before multi-objective runs existed
    if key == "constraints" and value is None:
        return []
    return value


def _run_one(config: RunConfig, run_dir: Path) -> dict:
    from pbtnas.engine.runner import make_runner, resume_runner

    if RunStore(run_dir).manifest_path.exists():
        return resume_runner(run_dir, progress=False).run()
    return make_runner(config, run_dir, progress=False).start().run()
