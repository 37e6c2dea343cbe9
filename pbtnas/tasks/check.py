"""``check_task``: the contract between a task and the engine, checked before any training.

Mixing moves the tensors a gene owns from one parent to a child by exact module path, so a
misspelt path moves nothing, two genes owning one tensor move it twice, and a layer that exists
only in some architectures without a gene owning it leaves a child that cannot be loaded. The
engine also relies on a task never touching the global random state (results must not depend on
which member ran before on the same worker), on ``evaluate`` giving one value for one state and,
for a :class:`~pbtnas.tasks.torch_task.TorchTask`, on evaluating in eval mode: an evaluation with
dropout on is deterministic under the engine's seeding, so only watching the forward passes finds
it (:func:`_train_mode_watch`).
:func:`check_task` builds a few architectures that together hold every option of every gene and
tests these rules on real states. A run calls it once in the driver before it creates the run
directory; call it from your own tests too::

    def test_my_task():
        pbtnas.check_task(MyTask())
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from pbtnas.errors import PbtnasError, TaskContractError, error_headline
from pbtnas.rundir.store import check_plain_data
from pbtnas.search.space import Genome, SearchSpace
from pbtnas.search.state import MemberState, keys_under
from pbtnas.tasks.base import Task
from pbtnas.tasks.torch_task import MODE_DEPENDENT, TRAIN_MODE_SEEN, plain_module

#: the version of what :func:`check_task` verifies, part of a remembered pass's key: a task that
#: passed an older check (2: evaluations in eval mode) is checked again
RULES = 2


@dataclass
class CheckReport:
    """What :func:`check_task` looked at: architectures, tensors per gene, time taken."""

    task: str
    architectures: int
    owned_tensors: dict[str, int] = field(default_factory=dict)
    reshaped_by_width: list[str] = field(default_factory=list)
    trained: bool = False
    same_in_fresh_process: bool = False
    seconds: float = 0.0

    def __str__(self) -> str:
        lines = [
            f"{self.task}: contract holds on {self.architectures} architectures ({self.seconds:.1f} s{', one training step' if self.trained else ''})"
        ]
        if self.same_in_fresh_process:
            lines.append("  evaluates the same in a freshly started process (as in a worker)")
        for gene, count in self.owned_tensors.items():
            lines.append(f"  {gene}: owns up to {count} tensor(s)")
        if self.reshaped_by_width:
            lines.append(
                "  shape-adapted on inheritance (width genes): "
                + ", ".join(self.reshaped_by_width[:8])
                + (" ..." if len(self.reshaped_by_width) > 8 else "")
            )
        return "\n".join(lines)


def check_task(task: Task | type | str, *, seed: int = 0, train: bool = True, evaluate: bool = True, fresh_process: bool = False) -> CheckReport:
    """Check that ``task`` (an instance, a class built with default options, or a config name)
    keeps the engine's rules; raise :class:`~pbtnas.errors.TaskContractError` naming the gene,
    model and module path that break one. ``train=False`` skips the one training step and
    ``evaluate=False`` the two evaluations of a mixed child (a run's start skips the step, and
    both for the built-in tasks, whose own tests check them: a GAN or RL evaluation is slow).
    ``fresh_process=True`` (with ``evaluate``) also evaluates the child in a newly started
    process, as a worker would, and requires the same fitness there (see
    :func:`_same_in_a_fresh_process`)."""
    started = time.perf_counter()
    task = _as_task(task)
    name = type(task).__name__
    space = getattr(task, "space", None)
    if not isinstance(space, SearchSpace):
        raise TaskContractError(f"{name}.space must be a pbtnas.SearchSpace, got {type(space).__name__}")
    genomes = space.stratified_population(max(2, max(len(g.options) for g in space.genes)), np.random.default_rng(seed))
    states = [_guarded(task, "init_state", task.init_state, genome, 1000 + i) for i, genome in enumerate(genomes)]
    for state in states:
        if not isinstance(state, MemberState):
            raise TaskContractError(f"{name}.init_state must return a pbtnas.MemberState, got {type(state).__name__}")
        check_plain_data(state.extra, f"{name}: after init_state, member.extra")
    report = CheckReport(task=name, architectures=len(genomes))
    owners = _ownership(task, genomes, states, report)
    _unowned_tensors(task, genomes, states, owners, report)
    child_genome, child_state = _mixed_child(task, genomes, states, seed)
    _guarded(task, "build_module", task.build_module, child_genome, child_state)
    if evaluate:
        fitness = _evaluated(task, "evaluate", task.score, child_genome, child_state, seed)
        again = _evaluated(task, "evaluate", task.score, child_genome, child_state, seed)
        if not (fitness == again or (np.isnan(fitness) and np.isnan(again))):
            raise TaskContractError(
                f"{name}.evaluate gave {fitness} and then {again} for the same state and seed: "
                "fitness must be deterministic (seed the evaluation from the seed it is given)"
            )
        _other_evaluations(task, child_genome, child_state, seed)
        if fresh_process:
            report.same_in_fresh_process = _same_in_a_fresh_process(task, child_genome, child_state, seed, fitness)
    if train:
        trained, _ = _guarded(task, "train_step", task.train_step, child_genome, child_state, 0, seed)
        check_plain_data(trained.extra, f"{name}: after train, member.extra")
        _evaluated(task, "evaluate", task.score, child_genome, trained, seed)
        report.trained = True
    report.seconds = time.perf_counter() - started
    return report


#: task configs already found to evaluate the same in a fresh process (checked once per process)
_SAME_ELSEWHERE: set[str] = set()


def _same_in_a_fresh_process(task: Task, genome: Genome, state: MemberState, seed: int, fitness: float) -> bool:
    """Evaluate ``state`` in a newly started (spawned) process and require ``fitness`` there.

    Workers build the task anew in their own processes. Anything a task file computes when it is
    imported — most often data drawn at random without a seed — then differs from worker to
    worker, and members are silently trained and compared on different data. The same
    evaluation in two processes finds that before a run starts. Skipped (False) for a task only
    this process can build (defined in a notebook: in-process runs only) and for a GPU task.
    """
    import dataclasses
    import json
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from pbtnas.tasks import importable_elsewhere, portable_task_config, task_reference

    options = getattr(task, "options", None)
    values = dataclasses.asdict(options) if dataclasses.is_dataclass(options) and not isinstance(options, type) else {}
    config = {"name": task_reference(type(task)), **values}
    config = portable_task_config(config)
    device = getattr(task, "device", None)
    if not importable_elsewhere(config["name"]) or (isinstance(device, torch.device) and device.type != "cpu"):
        # On a GPU, kernels chosen per process (cuDNN's autotuner) may change the last digits:
        # the check would refuse sound tasks, so it runs on CPU tasks only.
        return False
    key = json.dumps(config, sort_keys=True, default=str)
    if key in _SAME_ELSEWHERE:
        return True
    name = type(task).__name__
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        try:
            # spawn gives the new process this one's sys.path, as it does a local worker
            there = pool.submit(_fresh_score, config, torch.get_num_threads(), genome, state, seed).result()
        except PbtnasError as exc:
            raise TaskContractError(f"{name}: in a freshly started process (as a worker is), {exc}") from None
        except Exception as exc:  # noqa: BLE001 - the user's code, in another process: one line
            raise TaskContractError(f"{name}: in a freshly started process (as a worker is), evaluate failed: {type(exc).__name__}: {exc}") from None
    # a relative tolerance of 1e-6 forgives float noise; other data moves the fitness much more
    if not (abs(there - fitness) <= 1e-6 * max(1.0, abs(fitness)) or (np.isnan(there) and np.isnan(fitness))):
        raise TaskContractError(
            f"{name}.evaluate gave {fitness} here and {there} in a freshly started process for the same state and "
            "seed: something computed when the task's module is imported differs between processes (data drawn "
            "without a seed?), so members in different workers would be trained and compared on different data; "
            "seed it, e.g. torch.randn(..., generator=torch.Generator().manual_seed(0))"
        )
    _SAME_ELSEWHERE.add(key)
    return True


def _fresh_score(config: dict, threads: int, genome: Genome, state: MemberState, seed: int) -> float:
    """Body of :func:`_same_in_a_fresh_process` in the spawned process."""
    from pbtnas.tasks import build_task

    torch.set_num_threads(threads)
    return float(build_task(config).score(genome, state, seed))


def _as_task(task: Task | type | str) -> Task:
    from pbtnas.tasks import build_task, task_reference

    if isinstance(task, str):
        return build_task({"name": task})
    if isinstance(task, type):
        return build_task({"name": task_reference(task)})
    if not isinstance(task, Task):
        raise TaskContractError(f"check_task needs a pbtnas.Task, its class or a task name, got {type(task).__name__}")
    return task


def _rng_snapshot() -> tuple[Any, ...]:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else []
    return torch.get_rng_state(), [c.clone() for c in cuda], np.random.get_state(), random.getstate()


def _same_rng(a: tuple[Any, ...], b: tuple[Any, ...]) -> list[str]:
    changed = []
    if not torch.equal(a[0], b[0]) or len(a[1]) != len(b[1]) or any(not torch.equal(x, y) for x, y in zip(a[1], b[1])):
        changed.append("torch's")
    if not (a[2][0] == b[2][0] and np.array_equal(a[2][1], b[2][1]) and a[2][2:] == b[2][2:]):
        changed.append("numpy's")
    if a[3] != b[3]:
        changed.append("Python's")
    return changed


def _guarded(task: Task, what: str, call: Callable, *args: Any) -> Any:
    """Call one task method; its exception or a change of global random state is a contract error."""
    name = type(task).__name__
    before = _rng_snapshot()
    try:
        result = call(*args)
    except PbtnasError:
        raise
    except Exception as exc:
        raise TaskContractError(f"{name}.{what} failed: {type(exc).__name__}: {error_headline(str(exc))}") from exc
    changed = _same_rng(before, _rng_snapshot())
    if changed:
        raise TaskContractError(
            f"{name}.{what} changed {' and '.join(changed)} global random state; draw from a generator seeded "
            "with the seed it is given (torch.Generator().manual_seed(seed), numpy.random.default_rng(seed)) or "
            "wrap the code in torch.random.fork_rng() (pbtnas.TorchTask does this for you)"
        )
    return result


def _evaluated(task: Task, what: str, call: Callable, *args: Any) -> Any:
    """:func:`_guarded` for an evaluation: a TorchTask's forward passes in its own evaluation
    methods must run in eval mode, unless the task declares ``evaluates_in_train_mode = True``
    (see :func:`~pbtnas.tasks.torch_task.watch_train_mode`)."""

    seen: list[tuple[str, str, torch.nn.Module]] = []
    token = TRAIN_MODE_SEEN.set(seen)
    try:
        result = _guarded(task, what, call, *args)
    finally:
        TRAIN_MODE_SEEN.reset(token)
    if seen:
        method, path, module = next((s for s in seen if isinstance(s[2], MODE_DEPENDENT)), seen[0])
        name = type(task).__name__
        kind = type(plain_module(module)).__name__
        which = f"module {path} ({kind})" if path else kind
        raise TaskContractError(
            f"{name}.{method} ran a forward pass of {which} in train mode: the engine calls it with the models in "
            "eval mode, so do not call .train() there (dropout would be on, BatchNorm would use batch statistics); "
            f"if the task truly evaluates in train mode, set evaluates_in_train_mode = True on {name}"
        )
    return result


def _other_evaluations(task: Task, genome: Genome, state: MemberState, seed: int) -> None:
    """A TorchTask's own ``final_evaluate`` and ``select`` (when it writes them), once each,
    watched for forward passes in train mode like ``evaluate``."""
    from pbtnas.tasks.torch_task import TorchTask

    if not isinstance(task, TorchTask):
        return
    cls = type(task)
    if cls.final_evaluate is not TorchTask.final_evaluate:  # the default calls evaluate: seen above
        _evaluated(task, "final_evaluate", task.final_score, genome, state, seed)
    if cls.select is not TorchTask.select:
        try:
            task.check_selection_split()
        except PbtnasError:
            return  # no selection split with these options: a run that needs one says so at its start
        _evaluated(task, "select", task.selection_score, genome, state, seed)


def _ownership(task: Task, genomes: list[Genome], states: list[MemberState], report: CheckReport) -> list[dict[str, str]]:
    """Per architecture: tensor ``"model:name"`` -> the gene that owns it; errors for paths that
    hold nothing anywhere, unknown model keys and tensors owned twice."""
    name = type(task).__name__
    owners: list[dict[str, str]] = [{} for _ in genomes]
    model_keys = set().union(*(s.models for s in states))
    for gene in task.space.weight_genes:
        owned = task.gene_modules(gene)
        if not isinstance(owned, dict) or not all(isinstance(v, (list, tuple)) for v in owned.values()):
            raise TaskContractError(f"{name}.gene_modules({gene!r}) must return model key -> list of module paths, got {owned!r}")
        unknown = sorted(set(owned) - model_keys)
        if unknown:
            raise TaskContractError(f"gene {gene!r} names model(s) {unknown}, but members have models {sorted(model_keys)}")
        most = 0
        hits_per_model: dict[str, int] = {}
        for i, state in enumerate(states):
            count = 0
            for key, prefixes in owned.items():
                for tensor in keys_under(state.models.get(key, {}), prefixes):
                    full = f"{key}:{tensor}"
                    if full in owners[i]:
                        raise TaskContractError(
                            f"genes {owners[i][full]!r} and {gene!r} both own tensor {full} (paths {owned}); each tensor may belong to one gene only"
                        )
                    owners[i][full] = gene
                    count += 1
                    hits_per_model[key] = hits_per_model.get(key, 0) + 1
            most = max(most, count)
        if most == 0:
            paths = ", ".join(f"{k}:{p}" for k, ps in owned.items() for p in ps)
            raise TaskContractError(
                f"gene {gene!r} owns weights but its module path(s) {paths} hold no tensor in any of "
                f"{len(genomes)} architectures that together use every option; name the submodule after the "
                "gene (or fix the path in gene_modules / module_paths), or declare the gene owns_weights=False"
            )
        if len(hits_per_model) > 1 and _derived_paths(task, gene):
            raise TaskContractError(
                f"gene {gene!r} matches module path(s) in models {sorted(hits_per_model)}; name the gene "
                f"'{sorted(hits_per_model)[0]}.<path>' or set module_paths = {{{gene!r}: 'MODEL:PATH'}}"
            )
        report.owned_tensors[gene] = most
    return owners


def _derived_paths(task: Task, gene: str) -> bool:
    from pbtnas.tasks.torch_task import TorchTask

    return isinstance(task, TorchTask) and gene not in task.module_paths


def _unowned_tensors(task: Task, genomes: list[Genome], states: list[MemberState], owners: list[dict[str, str]], report: CheckReport) -> None:
    """A tensor no gene owns must exist in every architecture with the same number of dimensions;
    its size may change (a layer that reads a width gene's output), which inheritance adapts."""
    shapes: dict[str, dict[int, tuple[int, ...]]] = {}
    for i, state in enumerate(states):
        for key, sd in state.models.items():
            for tensor_name, tensor in sd.items():
                full = f"{key}:{tensor_name}"
                if full not in owners[i] and torch.is_tensor(tensor):
                    shapes.setdefault(full, {})[i] = tuple(tensor.shape)
    for full, seen in shapes.items():
        # shadow copies are owned through the model they shadow
        key, _, tensor_name = full.partition(":")
        source = task.shadow_models.get(key)
        if source is not None and any(f"{source}:{tensor_name}" in owners[i] for i in seen):
            continue
        if len(seen) != len(genomes):
            missing = next(i for i in range(len(genomes)) if i not in seen)
            present = next(iter(seen))
            diff = {g: (genomes[present][g], genomes[missing][g]) for g in genomes[present] if genomes[present][g] != genomes[missing][g]}
            raise TaskContractError(
                f"tensor {full} is owned by no gene but exists only in some architectures (present with "
                f"{_brief(genomes[present], diff, 0)}, absent with {_brief(genomes[missing], diff, 1)}); the gene "
                "that creates it must own it: name its submodule after the gene or list the path in gene_modules"
            )
        dims = {len(s) for s in seen.values()}
        if len(dims) > 1:
            raise TaskContractError(
                f"tensor {full} is owned by no gene and changes its number of dimensions "
                f"between architectures ({sorted(set(seen.values()))}); inheritance can adapt "
                "sizes but not dimensions: let a gene own it"
            )
        if len(set(seen.values())) > 1:
            report.reshaped_by_width.append(full)


def _brief(genome: Genome, diff: dict[str, tuple], which: int) -> str:
    items = [f"{g}={v[which]!r}" for g, v in list(diff.items())[:4]]
    return ", ".join(items) + (" ..." if len(diff) > 4 else "")


def _mixed_child(task: Task, genomes: list[Genome], states: list[MemberState], seed: int) -> tuple[Genome, MemberState]:
    """A child of the first two architectures with every gene marked with probability 1/2."""
    from pbtnas.search.operators.mixing import mix

    rng = np.random.default_rng(seed + 1)
    try:
        genome, state, _ = _guarded(
            task, "init_state during mixing", lambda: mix(task, (genomes[0], states[0]), (genomes[1], states[1]), rng, p_donor=0.5)
        )
    except TaskContractError as exc:
        raise TaskContractError(f"mixing two architectures failed: {exc}") from None
    return genome, state
