"""The high-level task API: torch modules trained with torch optimizers, chores done by the engine.

A user writes the search space, ``build(genome)`` (a module, or a dict of modules, whose submodules
are named after the genes that own them), ``optimizers``, ``train`` for one step and ``evaluate``::

    class Regression(pbtnas.TorchTask):
        space = pbtnas.SearchSpace([pbtnas.Gene("hidden", [16, 32, 64]),
                                    pbtnas.hyperparameter("lr", [1e-3, 1e-2])])

        def build(self, genome):
            return Net(genome)                  # Net has a submodule called "hidden"

        def optimizers(self, member):
            return torch.optim.Adam(member.model.parameters(), lr=member.genome["lr"])

        def train(self, member):                # one step; returns metrics
            ...
            return {"loss": loss.item()}

        def evaluate(self, member):             # fitness, higher is better
            return -val_loss

The engine does the rest, written once here: it rebuilds the models from a member's state,
moves them to the device, restores optimizer state by parameter name (so a new learning rate from
a hyperparameter gene reaches the existing Adam moments), seeds and forks every random number
generator so nothing global is touched, stops a member whose loss or weights turn non-finite,
captures the state for the checkpoint, and derives which module path each gene owns from the
gene's name (``module_paths`` overrides it). :class:`~pbtnas.tasks.base.Task` stays the low-level seam.
"""

from __future__ import annotations

import copy
import math
import random
import warnings
from abc import abstractmethod
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator

import numpy as np
import torch
import torch.nn as nn

from pbtnas.errors import MemberDiverged, TaskContractError
from pbtnas.search.space import Genome, SearchSpace
from pbtnas.search.state import MemberState, capture_optimizer, is_continuous, load_weights, restore_optimizer, state_dict_cpu
from pbtnas.tasks.base import Task, doc

DEFAULT_KEY = "model"


@dataclass
class TorchOptions:
    """Options of a :class:`TorchTask` that declares none of its own (config section ``task``)."""

    device: str = doc("torch device members train on, e.g. cpu or cuda", "cpu")


@dataclass
class Member:
    """One population member as a :class:`TorchTask`'s methods see it.

    ``models`` holds the trained models and their shadow copies (e.g. an EMA) by key, on
    ``device``; ``optimizers`` the optimizers by model key (only in ``train``); ``extra`` is a
    dict the task may fill with plain data it carries between steps (counters, a replay
    buffer: numbers, strings, tensors, numeric numpy arrays, and lists/tuples/sets/dicts of
    these; checked when the member is saved); ``generator`` (torch, on the CPU) and ``rng`` (numpy) are seeded for this member and
    step. Torch's, numpy's and Python's global generators are also seeded for the call and put
    back afterwards, so dropout and friends are reproducible and nothing leaks between members.
    """

    genome: Genome
    models: dict[str, nn.Module]
    step: int
    seed: int
    device: torch.device
    optimizers: dict[str, torch.optim.Optimizer] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    generator: torch.Generator = field(default_factory=torch.Generator)
    rng: np.random.Generator = field(default_factory=np.random.default_rng)

    @property
    def model(self) -> nn.Module:
        """The model, when the task builds one (or the one under the key ``"model"``)."""
        if DEFAULT_KEY in self.models:
            return self.models[DEFAULT_KEY]
        raise TaskContractError(f"this task builds several models {sorted(self.models)}: use member.models[key]")

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        """The optimizer of :attr:`model`."""
        if DEFAULT_KEY in self.optimizers:
            return self.optimizers[DEFAULT_KEY]
        raise TaskContractError(f"this task has optimizers {sorted(self.optimizers)}: use member.optimizers[key]")


class TorchTask(Task):
    """Base class of a task written with the high-level API (see the module docstring).

    Class attributes a subclass may set:

    * ``space``: the :class:`~pbtnas.search.space.SearchSpace` (or set ``self.space`` in ``__init__``
      when it depends on the options);
    * ``Options``: a dataclass of the task's config keys (default: only ``device``);
    * ``shadow_models``: shadow key -> the model it shadows, e.g. ``{"ema": "model"}``; the engine
      creates the shadow as a copy of its model at initialisation, and a child takes a shadow's
      transplanted layers from the donor without shrink-perturb;
    * ``module_paths``: gene -> module path(s) it owns, where a gene's name is not the path
      (``"model_key:path"`` picks the model when there are several);
    * ``deploy``: the model key ``pbtnas export`` delivers (default: the only model, or ``"model"``);
    * ``evaluates_in_train_mode``: ``True`` when ``evaluate`` / ``final_evaluate`` / ``select`` run
      forward passes in train mode on purpose (``pbtnas check`` refuses that otherwise);
    * ``fitness_name``, ``final_metric_name``, ``default_final_selection`` as in :class:`Task`.

    The engine calls :meth:`score` and :meth:`final_score` (the low-level seam's evaluation); they
    load the member and call this class's member-based :meth:`evaluate` / :meth:`final_evaluate`.
    """

    Options: ClassVar[type] = TorchOptions
    module_paths: dict[str, str | list[str]] = {}
    deploy: ClassVar[str | None] = None
    #: the evaluations switch models to train mode on purpose (e.g. Monte Carlo dropout); without
    #: it ``check_task`` refuses a forward pass in train mode during them, the usual mistake
    evaluates_in_train_mode: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        space = vars(cls).get("space")
        if isinstance(space, SearchSpace) and space.name == "space":
            space.name = cls.__name__  # names the space in `pbtnas space`, reports and exports
        # a task that names only its fitness reports the same quantity as its final metric
        if "final_metric_name" not in vars(cls) and cls.final_metric_name in ("metric", TorchTask.final_metric_name):
            cls.final_metric_name = cls.fitness_name

    def __init__(self, options: Any = None):
        super().__init__(options if options is not None else self.Options())
        self._trained_keys: list[str] | None = None
        self._buffers: dict[str, set[str]] = {}  # model key -> buffer names seen in any build

    # -- what the user writes -----------------------------------------------------------------
    @abstractmethod
    def build(self, genome: Genome) -> nn.Module | dict[str, nn.Module]:
        """The model(s) of a genome, freshly initialised. Name each searchable submodule after the
        gene that owns it (gene ``"block1"`` -> attribute ``block1``; gene ``"enc.layer2"`` ->
        ``enc.layer2``). Called under a seeded, forked RNG: initialise with torch's global RNG."""

    def optimizers(self, member: Member) -> torch.optim.Optimizer | dict[str, torch.optim.Optimizer]:
        """The optimizer(s) of the trained models, built anew every step from the genome and
        options; the engine then restores their state by parameter name. Default: Adam, lr 1e-3."""
        return {key: torch.optim.Adam(member.models[key].parameters(), lr=1e-3) for key in self.trained_keys}

    @abstractmethod
    def train(self, member: Member) -> dict[str, float]:
        """Train ``member`` for one step (models in train mode); return metrics such as the mean
        loss. A non-finite metric or weight stops the member (fitness -inf), not the run."""

    @abstractmethod
    def evaluate(self, member: Member) -> float | dict[str, float]:  # type: ignore[override]
        """Fitness during search, higher is better, on data kept apart from training. Models are
        in eval mode under ``torch.no_grad()``; for a fixed state it must give the same value.
        A task that declares ``metric_names`` returns a dict instead: the fitness under
        ``"fitness"`` and a number for each declared name (objectives of a multi-objective run)."""

    def final_evaluate(self, member: Member) -> dict[str, float]:  # type: ignore[override]
        """The larger held-apart evaluation of the delivered network. Default: ``evaluate``."""
        return {self.final_metric_name: _values(self.evaluate(member), f"{type(self).__name__}.evaluate", self.metric_names)["fitness"]}

    def select(self, member: Member) -> float:
        """Optional: the score on a selection split that no fitness evaluation sees, for
        ``final_selection: top-k-reevaluated`` (see :mod:`pbtnas.search.final_selection`)."""
        raise NotImplementedError

    def init_extra(self, genome: Genome) -> dict[str, Any]:
        """What a new member carries in ``member.extra`` from its first step. Default: nothing."""
        return {}

    # -- the low-level seam, implemented once -------------------------------------------------
    @property
    def trained_keys(self) -> list[str]:
        """Keys of the models that are trained (not shadows), learnt from one build."""
        if self._trained_keys is None:
            genome = {g.name: g.options[0] for g in self.space.genes}
            self._trained_keys = sorted(self._build_models(genome, seed=0))
        return self._trained_keys

    def _build_models(self, genome: Genome, seed: int) -> dict[str, nn.Module]:
        with seeded(seed, self.device):
            built = self.build(genome)
            if isinstance(built, nn.Module):
                models = {DEFAULT_KEY: built}
            elif isinstance(built, dict) and built and all(isinstance(m, nn.Module) for m in built.values()):
                models = dict(built)
            else:
                raise TaskContractError(f"{type(self).__name__}.build must return a torch.nn.Module or a dict of them, got {type(built).__name__}")
            for key, module in models.items():
                if _has_lazy_tensors(module):
                    self._materialise(key, module)
        for key, module in models.items():
            self._buffers.setdefault(key, set()).update(name for name, _ in plain_module(module).named_buffers())
        for shadow, source in self.shadow_models.items():
            if shadow in models:
                raise TaskContractError(f"{type(self).__name__}.build returned {shadow!r}, which is a shadow model the engine creates itself")
            if source not in models:
                raise TaskContractError(f"shadow model {shadow!r} shadows {source!r}, which build() does not return (models: {sorted(models)})")
        return models

    def _materialise(self, key: str, module: nn.Module) -> None:
        """Give lazy layers (``nn.LazyLinear``, ...) their shapes by one forward pass on
        ``example_input(2)``, under the build's seed, so that every built network has a full
        state dict to checkpoint, transplant and shrink-perturb."""
        hook = self.example_input
        deployed = self.deploy or DEFAULT_KEY
        if hook is None or key != deployed:
            how = "define example_input(batch) so that pbtnas can initialise them with one forward pass"
            if hook is not None:
                how = "only the deployed model may have them"
            raise TaskContractError(
                f"{type(self).__name__}.build returned model {key!r} with lazy (uninitialised) layers: {how}, or give the layers their input sizes"
            )
        training = module.training
        with torch.no_grad():
            module.eval()(hook(2))
        module.train(training)
        if _has_lazy_tensors(module):
            name = type(self).__name__
            raise TaskContractError(f"{name}: lazy layers of model {key!r} are still uninitialised after a forward pass on example_input(2)")

    def _with_shadows(self, models: dict[str, nn.Module]) -> dict[str, nn.Module]:
        for shadow, source in self.shadow_models.items():
            models[shadow] = copy.deepcopy(plain_module(models[source]))
            models[shadow].requires_grad_(False)
        return models

    def init_state(self, genome: Genome, seed: int) -> MemberState:
        models = self._with_shadows(self._build_models(genome, seed))
        return MemberState(
            models={key: state_dict_cpu(plain_module(m)) for key, m in models.items()},
            optim={key: {} for key in models if key not in self.shadow_models},
            extra=copy.deepcopy(self.init_extra(genome)),
        )

    def member(self, genome: Genome, state: MemberState, step: int = 0, seed: int = 0) -> Member:
        """The member of a state with its models loaded on the device (no optimizers)."""
        models = self._with_shadows(self._build_models(genome, seed))
        for key, module in models.items():
            if key not in state.models:
                raise TaskContractError(f"the member's state has no model {key!r} (it has {sorted(state.models)})")
            load_weights(plain_module(module), state.models[key], key)
            module.to(self.device)
        return Member(
            genome=genome,
            models=models,
            step=step,
            seed=seed,
            device=self.device,
            extra=copy.deepcopy(state.extra),
            generator=torch.Generator().manual_seed(seed),
            rng=np.random.default_rng(seed),
        )

    def train_step(self, genome: Genome, state: MemberState, step: int, seed: int) -> tuple[MemberState, dict]:
        member = self.member(genome, state, step, seed)
        for module in member.models.values():
            module.train()
        member.optimizers = self._optimizers(member)
        for key, optimizer in member.optimizers.items():
            restore_optimizer(optimizer, plain_module(member.models[key]), state.optim.get(key, {}))
        with seeded(seed, self.device):
            metrics = self.train(member)
        metrics = _checked_metrics(metrics, type(self).__name__, step)
        new = MemberState(
            models={key: state_dict_cpu(plain_module(m)) for key, m in member.models.items()},
            optim={key: _cpu(capture_optimizer(opt, plain_module(member.models[key]))) for key, opt in member.optimizers.items()},
            extra=member.extra,
        )
        for key, sd in new.models.items():
            for name, tensor in sd.items():
                if is_continuous(tensor) and not torch.isfinite(tensor).all():
                    raise MemberDiverged(f"{key}:{name} holds non-finite values after step {step}")
        return new, metrics

    def _optimizers(self, member: Member) -> dict[str, torch.optim.Optimizer]:
        made = self.optimizers(member)
        if isinstance(made, torch.optim.Optimizer):
            if len(self.trained_keys) != 1:
                raise TaskContractError(
                    f"{type(self).__name__}.optimizers returned one optimizer for models {self.trained_keys}: return a dict model key -> optimizer"
                )
            made = {self.trained_keys[0]: made}
        if not isinstance(made, dict) or not all(isinstance(o, torch.optim.Optimizer) for o in made.values()):
            raise TaskContractError(f"{type(self).__name__}.optimizers must return a torch optimizer or a dict model key -> optimizer")
        unknown = sorted(set(made) - set(self.trained_keys))
        if unknown:
            raise TaskContractError(f"{type(self).__name__}.optimizers names model(s) {unknown}; models are {self.trained_keys}")
        return made

    def _score(self, genome: Genome, state: MemberState, seed: int) -> Member:
        member = self.member(genome, state, -1, seed)
        for module in member.models.values():
            module.eval()
        return member

    def score(self, genome: Genome, state: MemberState, seed: int) -> float:
        return self.score_values(genome, state, seed)["fitness"]

    def score_values(self, genome: Genome, state: MemberState, seed: int) -> dict[str, float]:
        member = self._score(genome, state, seed)
        with torch.no_grad(), seeded(seed, self.device), self._watched("evaluate", member):
            return _values(self.evaluate(member), f"{type(self).__name__}.evaluate", self.metric_names)

    def final_score(self, genome: Genome, state: MemberState, seed: int) -> dict[str, float]:
        member = self._score(genome, state, seed)
        with torch.no_grad(), seeded(seed, self.device), self._watched("final_evaluate", member):
            result = self.final_evaluate(member)
        if not isinstance(result, dict):
            raise TaskContractError(f"{type(self).__name__}.final_evaluate must return a dict of metrics")
        return result

    def selection_score(self, genome: Genome, state: MemberState, seed: int) -> float:
        if type(self).select is TorchTask.select:
            return super().selection_score(genome, state, seed)
        member = self._score(genome, state, seed)
        with torch.no_grad(), seeded(seed, self.device), self._watched("select", member):
            return _fitness(self.select(member), f"{type(self).__name__}.select")

    @contextmanager
    def _watched(self, method: str, member: Member) -> Iterator[None]:
        """While ``check_task`` watches (:data:`TRAIN_MODE_SEEN` set), report the modules that one
        of the task's own evaluation methods runs in train mode; otherwise nothing."""
        seen = TRAIN_MODE_SEEN.get()
        if seen is None or self.evaluates_in_train_mode:
            yield
            return
        names: dict[int, str] = {}
        for key, model in member.models.items():
            for path, module in plain_module(model).named_modules():
                prefix = "" if list(member.models) == [DEFAULT_KEY] else f"{key}."
                names.setdefault(id(module), f"{prefix}{path}" if path else key)
            names.setdefault(id(model), key)  # a torch.compile wrapper
        with watch_train_mode(names) as found:
            yield
        seen.extend((method, path, module) for path, module in found)

    def check_selection_split(self) -> None:
        if type(self).select is TorchTask.select and type(self).selection_score is TorchTask.selection_score:
            super().selection_score({}, MemberState(), 0)

    def build_module(self, genome: Genome, state: MemberState) -> nn.Module:
        member = self.member(genome, state)
        key = self.deploy or (DEFAULT_KEY if DEFAULT_KEY in member.models else None)
        if key is None:
            trained = [k for k in member.models if k not in self.shadow_models]
            if len(trained) != 1:
                raise TaskContractError(
                    f"{type(self).__name__} builds models {sorted(member.models)}: set deploy = KEY to say which one export delivers"
                )
            key = trained[0]
        return plain_module(member.models[key]).eval()

    def is_buffer(self, model_key: str, name: str) -> bool:
        """Exact: the buffers (``register_buffer``) of every model built so far, plus torch's
        standard ones by name."""
        source = self.shadow_models.get(model_key, model_key)
        return name in self._buffers.get(source, ()) or super().is_buffer(model_key, name)

    def gene_modules(self, gene: str) -> dict[str, list[str]]:
        if not self.space[gene].owns_weights:
            return {}
        paths = self.module_paths.get(gene, gene)
        owned: dict[str, list[str]] = {}
        for path in [paths] if isinstance(paths, str) else list(paths):
            key, sep, rest = path.partition(":")
            if sep:
                owned.setdefault(key, []).append(rest)
                continue
            head, dot, tail = path.partition(".")
            if dot and head in self.trained_keys and len(self.trained_keys) > 1:
                owned.setdefault(head, []).append(tail)
                continue
            for key in self.trained_keys:
                owned.setdefault(key, []).append(path)
        return owned


#: while ``check_task`` checks a task: (method, module path, module) of every forward pass in train
#: mode during the task's own ``evaluate``, ``final_evaluate`` or ``select`` (None otherwise)
TRAIN_MODE_SEEN: ContextVar[list[tuple[str, str, nn.Module]] | None] = ContextVar("pbtnas_train_mode_seen", default=None)

#: module kinds whose forward pass differs in train mode, named first when several run in it
MODE_DEPENDENT = (torch.nn.modules.dropout._DropoutNd, torch.nn.modules.batchnorm._NormBase, torch.nn.RNNBase)


@contextmanager
def watch_train_mode(names: dict[int, str]) -> Iterator[list[tuple[str, torch.nn.Module]]]:
    """Record ``(path, module)`` of the modules whose forward pass runs in train mode while the
    block runs: the member's own modules (``names``: ``id(module)`` -> its path) and, anywhere
    (a feature extractor the task keeps), the kinds that behave differently in train mode.

    The engine puts a :class:`TorchTask`'s models in eval mode before ``evaluate``; a
    ``model.train()`` inside it turns dropout on and makes BatchNorm use (and update) batch
    statistics. Per-call seeding keeps such an evaluation deterministic, so the determinism check
    cannot see it: every member would silently be scored with dropout on. A module made inside
    the method (``nn.Softmax(1)(x)``: in train mode from birth, behaving the same in both) is not
    counted. Global forward hooks see every module; the path of one that is not the member's
    comes from the modules whose forward passes enclose it (a stack)."""
    from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook

    found: list[tuple[str, torch.nn.Module]] = []
    stack: list[tuple[str, torch.nn.Module]] = []

    def enter(module: torch.nn.Module, args: Any) -> None:
        if torch.compiler.is_compiling():
            # torch.compile traces global hooks into its graph and refuses their closure; the
            # compiled wrapper's own call (outside the graph) is still watched
            return
        path = names.get(id(module), "")  # "": a module called on its own
        if not path and stack:
            parent_path, parent = stack[-1]
            child = next((n for n, c in parent.named_children() if c is module), None)
            if child is not None:
                path = f"{parent_path}.{child}" if parent_path else child
        stack.append((path, module))
        counts = id(module) in names or isinstance(module, MODE_DEPENDENT)
        if module.training and counts and len(found) < 64 and all(m is not module for _, m in found):
            found.append((path, module))

    def leave(module: torch.nn.Module, args: Any, output: Any) -> None:
        if not torch.compiler.is_compiling() and stack and stack[-1][1] is module:
            stack.pop()

    before = register_module_forward_pre_hook(enter)
    # always_call: a forward that raises still leaves the stack
    after = register_module_forward_hook(leave, always_call=True)
    try:
        with warnings.catch_warnings():
            # torch.compile warns that global hooks also fire for its wrapper: wanted here
            warnings.filterwarnings("ignore", message=".*global hooks on modules.*")
            yield found
    finally:
        before.remove()
        after.remove()


def _has_lazy_tensors(module: nn.Module) -> bool:
    from torch.nn.parameter import is_lazy

    return any(is_lazy(t) for t in [*module.parameters(), *module.buffers()])


def plain_module(module: nn.Module) -> nn.Module:
    """The module itself, or the one a ``torch.compile`` wrapper compiles.

    A task's ``build`` may return ``torch.compile(net)``: its ``train`` and ``evaluate`` then run
    the compiled wrapper, while checkpoints, gene paths, optimizer moments and exports use the
    plain module's names (``block.weight``, not ``_orig_mod.block.weight``), so that they do not
    depend on whether the network was compiled.
    """
    original = getattr(module, "_orig_mod", None)
    return original if isinstance(original, nn.Module) else module


@contextmanager
def seeded(seed: int, device: torch.device | str = "cpu") -> Iterator[None]:
    """Seed torch's, numpy's and Python's global generators for a block and put them back after."""
    device = torch.device(device)
    cuda = [device.index or 0] if device.type == "cuda" and torch.cuda.is_available() else []
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(seed)
            np.random.seed(seed % 2**32)
            random.seed(seed)
            yield
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)


def _fitness(value: Any, method: str) -> float:
    """The one number ``evaluate`` (or ``select``) returned; a float, an int, a numpy scalar
    or a one-element tensor. Anything else is a contract error naming what came back."""
    if torch.is_tensor(value) and value.numel() == 1:
        value = value.detach().item()
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.item()
    if isinstance(value, (bool, str)) or not isinstance(value, (int, float, np.integer, np.floating)):
        shown = f"{type(value).__name__} {value!r}"[:120]
        raise TaskContractError(f"{method} must return one number, the fitness (higher is better), got {shown}")
    return float(value)


def _values(value: Any, method: str, declared: tuple[str, ...]) -> dict[str, float]:
    """What ``evaluate`` returned as ``{"fitness": ..., name: ...}``: one number (the fitness) or
    a dict holding ``"fitness"`` and every declared metric name, each one number."""
    if not isinstance(value, dict):
        if declared:
            raise TaskContractError(f"{method} must return a dict with 'fitness' and {list(declared)} (metric_names), got {type(value).__name__}")
        return {"fitness": _fitness(value, method)}
    missing = [name for name in ("fitness", *declared) if name not in value]
    if missing:
        shown = f"dict {value!r}"[:120]
        raise TaskContractError(
            f"{method} must return one number, the fitness (higher is better), got {shown}; a dict must hold "
            f"'fitness' and every name in metric_names (missing: {missing})"
        )
    return {str(name): _fitness(number, f"{method}[{name!r}]") for name, number in value.items()}


def _checked_metrics(metrics: Any, owner: str, step: int) -> dict[str, float]:
    if metrics is None:
        return {}
    if not isinstance(metrics, dict):
        raise TaskContractError(f"{owner}.train must return a dict of metrics (or None), got {type(metrics).__name__}")
    out: dict[str, float] = {}
    for name, value in metrics.items():
        if torch.is_tensor(value):
            value = value.detach().item()
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise TaskContractError(f"{owner}.train returned metric {name!r} = {value!r}, not a number") from None
        if not math.isfinite(number):
            raise MemberDiverged(f"{name} became {number} at step {step}")
        out[str(name)] = number
    return out


def _cpu(named: dict) -> dict:
    return {n: {k: (v.to("cpu") if torch.is_tensor(v) else v) for k, v in s.items()} for n, s in named.items()}
