"""Model soups of a finished run: average the weights of members that share the delivered
network's architecture (Wortsman et al., 2022, "Model soups").

Members of a PBT-NAS population that share an architecture often descend from one another and
sit in one basin of the loss, so the average of their weights can beat each of them. Two soups:

* **uniform**: the plain average of every such member;
* **greedy**: members sorted by fitness, best first; each is added to the soup only if the
  soup's fitness (the task's validation evaluation) improves.

Both are scored with the task's final metric and written as member checkpoints under
``RUN_DIR/soup/`` (``uniform.pt``, ``greedy.pt``, ``soup.json``), which ``pbtnas export --which
soup-greedy`` turns into an exportable network like the run's own.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pbtnas.engine import seeding
from pbtnas.errors import CheckpointError, PbtnasError, RunFileError
from pbtnas.rundir.atomic import atomic_write_json
from pbtnas.rundir.checks import BEST_FILE, check_summary
from pbtnas.rundir.store import RunStore, damaged_best, file_sha256, load_member, save_member
from pbtnas.search.space import SearchSpace

if TYPE_CHECKING:  # the report reads soup.json through this module and imports no torch
    from pbtnas.search.state import MemberState

SOUP_DIR = "soup"
SOUP_FILE = f"{SOUP_DIR}/soup.json"


@dataclass
class Ingredient:
    """A member that may go into a soup: where its weights are and how fit it was."""

    uid: int
    fitness: float
    checkpoint: str


@dataclass
class SoupResult:
    """What ``pbtnas soup`` made (``soup/soup.json``)."""

    genome: dict
    delivered_uid: int
    delivered: dict
    ingredients: list[dict]
    uniform: dict = field(default_factory=dict)
    greedy: dict = field(default_factory=dict)
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def average(states: list[MemberState]) -> MemberState:
    """The element-wise mean of the floating tensors of every model; integer tensors (counters)
    and everything else (optimizer state, extras) are the first state's."""
    import torch

    from pbtnas.search.state import MemberState

    first = states[0]
    models: dict[str, dict] = {}
    for key, sd in first.models.items():
        models[key] = {}
        for name, tensor in sd.items():
            if torch.is_floating_point(tensor):
                stacked = torch.stack([s.models[key][name].to(torch.float64) for s in states])
                models[key][name] = stacked.mean(0).to(tensor.dtype)
            else:
                models[key][name] = tensor.clone()
    return MemberState(models=models, optim=first.optim, extra=first.extra)


def ingredients(store: RunStore, genome: dict, space: SearchSpace) -> list[Ingredient]:
    """Members of the final population (and the kept best networks) with the architecture of
    ``genome`` (hyperparameter genes may differ), one entry per member, best fitness first."""
    arch = [g.name for g in space.genes if g.kind != "hyperparameter"]
    found: dict[int, Ingredient] = {}
    manifest = store.read_manifest()
    # (uid, fitness, checkpoint, genome): the manifest, best.json and the top-k list record each
    # member's genome, so no checkpoint is read to find the ingredients
    candidates = [(m["uid"], m.get("fitness"), m.get("checkpoint"), m.get("genome")) for m in manifest["members"]]
    best = store.read_best()
    problem = damaged_best(store, manifest) if best else None
    if problem:
        raise CheckpointError(
            f"checkpoint {store.root / BEST_FILE} (the best network) is damaged: {problem}; restore it, or let "
            f"'pbtnas resume {store.root} --skip-damaged' replace it (on an unfinished run)"
        )
    if best:
        candidates.append((best.get("uid"), best.get("fitness"), BEST_FILE, best.get("genome")))
    for entry in manifest.get("top") or []:
        candidates.append((entry["uid"], entry["fitness"], entry["checkpoint"], entry.get("genome")))
    for uid, fitness, checkpoint, member_genome in candidates:
        if checkpoint is None or fitness is None or not isinstance(member_genome, dict) or not store.absolute(checkpoint).is_file():
            continue
        if checkpoint != BEST_FILE:  # checked against the manifest's checksums before it is read
            store.verified(checkpoint, "population.json", manifest, "restore it from a copy; a soup reads every member it averages")
        if any(member_genome.get(name) != genome.get(name) for name in arch):
            continue
        if uid not in found or fitness > found[uid].fitness:
            found[uid] = Ingredient(uid=uid, fitness=float(fitness), checkpoint=checkpoint)
    return sorted(found.values(), key=lambda i: (-i.fitness, i.uid))


def make_soups(run_dir: str | Path, trust_code: bool = False) -> SoupResult:
    """Uniform and greedy soups of the members sharing the delivered architecture; write them
    under ``RUN_DIR/soup/``. Raises :class:`PbtnasError` for an unfinished or foreign run, and for
    a task file that is not the one the run recorded (unless ``trust_code``; see
    :mod:`pbtnas.tasks.trust`)."""
    from pbtnas.tasks import build_task, import_roots, recorded_start_dir
    from pbtnas.tasks.devices import task_config_here
    from pbtnas.tasks.trust import check_run_task

    store = RunStore(run_dir)
    config = store.read_config()  # "not a pbtnas run directory" for a foreign folder
    summary = store.read_summary()  # damaged: one error naming it
    if summary and store.finished():  # what a soup reads of it
        remedy = f"remove it and run 'pbtnas resume {run_dir}' to evaluate the final network again, or restore it from a copy"
        check_summary(summary, store.root / "summary.json", remedy, ("best_genome", "best_uid", "best_fitness", "final_metrics"))
    if not summary or not store.finished():
        raise PbtnasError(
            f"{run_dir} has not finished: soups are made of a finished run's final population (finish it with: pbtnas resume {run_dir})"
        )
    check_run_task(run_dir, config["task"], trust_code)  # before any task code is imported
    # on a CPU for a GPU run's soups; with the run's start folder, where a task.env module lies
    task = build_task(task_config_here(config["task"]), import_roots(config["task"], recorded_start_dir(run_dir)))
    genome = task.space.validate(summary["best_genome"])  # the delivered network's architecture
    seed = seeding.int_seed(config.get("seed", 0), seeding.FINAL)
    found = ingredients(store, genome, task.space)
    result = SoupResult(
        genome=genome,
        delivered_uid=summary["best_uid"],
        delivered={"fitness": summary["best_fitness"], "final_metrics": summary["final_metrics"]},
        ingredients=[asdict(i) for i in found],
    )
    out = store.own_file(SOUP_FILE).parent  # a linked soup folder would take the writes elsewhere
    if len(found) < 2:
        result.note = f"no soup: only {len(found)} member(s) of the run share the delivered architecture (a soup needs two)"
        out.mkdir(exist_ok=True)
        atomic_write_json(out / "soup.json", result.to_dict())
        return result
    states = {i.uid: load_member(store.absolute(i.checkpoint))[1] for i in found}

    uniform = average([states[i.uid] for i in found])
    result.uniform = _scored(task, genome, uniform, seed, [i.uid for i in found], f"{SOUP_DIR}/uniform.pt")
    save_member(out / "uniform.pt", genome, uniform, summary["best_uid"], {"soup": "uniform"})
    result.uniform["sha256"] = file_sha256(out / "uniform.pt")  # what export verifies

    chosen = [found[0].uid]
    soup, fitness = states[found[0].uid], task.score(genome, states[found[0].uid], seed)
    for candidate in found[1:]:
        trial = average([states[u] for u in chosen + [candidate.uid]])
        trial_fitness = task.score(genome, trial, seed)
        if trial_fitness > fitness:
            chosen.append(candidate.uid)
            soup, fitness = trial, trial_fitness
    result.greedy = _scored(task, genome, soup, seed, chosen, f"{SOUP_DIR}/greedy.pt")
    save_member(out / "greedy.pt", genome, soup, summary["best_uid"], {"soup": "greedy"})
    result.greedy["sha256"] = file_sha256(out / "greedy.pt")
    atomic_write_json(out / "soup.json", result.to_dict())
    return result


def _scored(task, genome: dict, state: MemberState, seed: int, members: list[int], checkpoint: str) -> dict:
    return {
        "members": members,
        "fitness": float(task.score(genome, state, seed)),
        "final_metrics": task.final_score(genome, state, seed),
        "checkpoint": checkpoint,
    }


def read_soups(run_dir: str | Path) -> dict | None:
    """``soup/soup.json`` of a run, or None when no soup was made; damaged (not UTF-8, not JSON,
    not an object, a symbolic link): one error naming it."""
    remedy = f"make the soups again with: pbtnas soup {run_dir}"
    data = RunStore(run_dir).read_json(SOUP_FILE, remedy)
    if data is not None and not isinstance(data, dict):
        raise RunFileError(f"{Path(run_dir) / SOUP_FILE} is damaged (not a JSON object); {remedy}")
    return data
