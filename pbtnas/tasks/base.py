"""The task seam: everything about one learning problem, nothing about the population.

A task builds a member from a genome, trains it for one step, evaluates its fitness, and says
which module paths each weight-owning gene owns. It never knows which algorithm drives it or
where it runs; it only sees one member's :class:`~pbtnas.search.state.MemberState` at a time.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from pbtnas.errors import ConfigError

# the options mechanism lives in a leaf module (the run config uses it too); its names stay
# importable from here, where task code has always found them
from pbtnas.options import check_options, coerce_value, doc, options_doc, parse_options
from pbtnas.rundir.report_hints import ReportHints
from pbtnas.search.space import Genome, SearchSpace
from pbtnas.tasks.memory import MemoryNeed

if TYPE_CHECKING:  # torch is imported where a task uses it: reading a config or a run needs none
    import torch

    from pbtnas.rundir.runinfo import CodeOptions
    from pbtnas.search.state import MemberState


class EpisodeRecorder(Protocol):
    """The signature of :attr:`Task.record_episode`."""

    def __call__(self, genome: Genome, state: MemberState, size: int = ..., max_frames: int = ...) -> tuple[list[Any], float]: ...


@runtime_checkable
class HasDataSplits(Protocol):
    """A task that holds its data in memory as splits: ``data`` maps ``"train"``, ``"val"``,
    ``"test"`` (any of them) to ``(inputs, targets)`` tensors. ``pbtnas export`` takes a few
    held-out inputs from it when the task has no :attr:`Task.example_input`. Not on :class:`Task`
    itself: the built-in tasks load ``data`` lazily in a property, while a user's task may assign
    ``self.data`` (or hold anything else under that name)."""

    @property
    def data(self) -> Mapping[str, Any]: ...


class Task(ABC):
    """Base class of every task (classification, GAN, RL, ...).

    Subclasses set ``Options`` to a dataclass whose fields (each declared with :func:`doc`: its
    doc line, default, range and choices) are the task's config keys, and fill ``self.space`` in ``__init__``. Tasks are built once per
    process and reused for many members, so ``__init__`` must be cheap: load data lazily.

    Optional hooks are declared here with ``None``, meaning "not provided"; a task provides one
    by defining a method of that name (or sets it back to ``None`` to say it has none). Callers
    test ``task.hook is not None``, never ``getattr``, and mypy checks a built-in task's method
    against the declared signature:

    * :attr:`sample_grid` - ``sample_grid(genome, state, path, seed) -> path``: draw the member's
      samples as one PNG at ``path`` and return the path written. The engine calls it on the
      best member after every step; the files go to ``samples/`` and into the report (GAN).
    * :attr:`example_input` - ``example_input(batch) -> tensor``: a batch of ``batch`` real
      inputs of the deployed network. ``pbtnas export`` traces and checks the network on it;
      :class:`~pbtnas.tasks.torch_task.TorchTask` initialises lazy layers with one forward pass
      on ``example_input(2)``. Must be cheap and deterministic.
    * :attr:`record_episode` - ``record_episode(genome, state, size=..., max_frames=...) ->
      (frames, return)``: one deterministic evaluation episode as ``H x W x 3`` uint8 frames
      (longer side ``size``, at most ``max_frames``) and its return; loggers that show videos,
      and the report where :meth:`report_hints` allows it, call it on the delivered member (RL).
      Raise :class:`~pbtnas.errors.PbtnasError` saying why when nothing can render.
    * :attr:`code_options` - the options whose values name code to import (see the attribute).
    * ``data`` - see :class:`HasDataSplits`.
    """

    #: the dataclass of this task's options; each field is declared with :func:`doc` (its doc line, range, choices)
    Options: ClassVar[type]
    #: shadow model key -> the model it shadows (EMA generator, target critic). Shadow copies of
    #: transplanted layers are copied from the donor without shrink-perturb and have no optimizer.
    shadow_models: ClassVar[dict[str, str]] = {}
    #: name of the fitness (higher is better), e.g. "val_accuracy" or "-fd_clf"
    fitness_name: ClassVar[str] = "fitness"
    #: key of the headline metric in :meth:`final_evaluate`'s result
    final_metric_name: ClassVar[str] = "metric"
    #: direction of the final metric: True when higher is better (an accuracy, a return), False
    #: when lower is better (an error, a distance such as FID), None when undeclared. Fitness is
    #: always higher-is-better; the final metric need not be (``pbtnas compare`` tests the
    #: right way round only when it knows). Undeclared, compare takes a final metric named like
    #: the fitness as higher-is-better and otherwise guesses from the fitness name.
    final_metric_higher_is_better: ClassVar[bool | None] = None
    #: default choice of the final network: "best-ever" or "best-last"
    default_final_selection: ClassVar[str] = "best-ever"
    #: names of the metrics :meth:`score_values` reports besides the fitness, which a run may use
    #: as objectives or constraints (docs/multi-objective.md); a ``TorchTask``'s ``evaluate``
    #: then returns a dict holding them and ``"fitness"``
    metric_names: ClassVar[tuple[str, ...]] = ()
    #: the options whose values name code to import: a tuple of option names whose values read
    #: ``package.module:Name``, or a dict option -> function ``value -> module name or None``
    #: (``None``: that same reading). A run records each such module that is not installed code,
    #: and the verbs that import task code check it (:mod:`pbtnas.tasks.trust`). Default: none.
    code_options: ClassVar[CodeOptions] = ()

    # -- optional hooks: None means "not provided" (their contracts: the class docstring) -----
    #: draw the member's samples as one PNG at ``path``; returns the path written
    sample_grid: Callable[[Genome, MemberState, str, int], str] | None = None
    #: a batch of ``batch`` real inputs of the deployed network
    example_input: Callable[[int], torch.Tensor] | None = None
    #: one deterministic evaluation episode of a member: ``(frames, return)``
    record_episode: EpisodeRecorder | None = None

    def __init__(self, options: Any):
        check_options(options)  # options built in Python keep to their declarations too
        self.options = options
        self.space: SearchSpace

    @property
    def device(self) -> torch.device:
        import torch

        return torch.device(getattr(self.options, "device", "cpu"))

    # -- architecture ------------------------------------------------------------------------
    @abstractmethod
    def gene_modules(self, gene: str) -> dict[str, list[str]]:
        """Module path prefixes a weight-owning gene owns, per model key.

        Example: ``{"gen": ["cells.1.c3"]}``. Shadow models reuse the prefixes of the model
        they shadow. Weightless genes return ``{}``. Paths are matched exactly, never as
        substrings.
        """

    # -- life of a member ---------------------------------------------------------------------
    @abstractmethod
    def init_state(self, genome: Genome, seed: int) -> MemberState:
        """A freshly initialised member (the task's normal initialisation) seeded by ``seed``.

        Also the source of ``t_fresh`` for shrink-perturb; must not touch global RNG state.
        """

    @abstractmethod
    def train_step(self, genome: Genome, state: MemberState, step: int, seed: int) -> tuple[MemberState, dict]:
        """Train one step from ``state``; return the new state and metrics (e.g. mean loss).

        Raise :class:`~pbtnas.errors.MemberDiverged` when the loss becomes non-finite.
        """

    @abstractmethod
    def evaluate(self, genome: Genome, state: MemberState, seed: int) -> float:
        """Fitness used during search (higher is better), on data kept apart from training."""

    @abstractmethod
    def final_evaluate(self, genome: Genome, state: MemberState, seed: int) -> dict[str, float]:
        """The larger held-apart evaluation of the final network (test split, more samples)."""

    @abstractmethod
    def build_module(self, genome: Genome, state: MemberState) -> torch.nn.Module:
        """The network a user deploys (classifier, EMA generator, actor), weights loaded, eval mode."""

    # -- what the engine calls ----------------------------------------------------------------
    def score(self, genome: Genome, state: MemberState, seed: int) -> float:
        """The fitness as the engine asks for it. A task written with the low-level seam need not
        touch this (it calls :meth:`evaluate`); :class:`~pbtnas.tasks.torch_task.TorchTask` routes it to
        its member-based ``evaluate``."""
        return float(self.evaluate(genome, state, seed))

    def score_values(self, genome: Genome, state: MemberState, seed: int) -> dict[str, float]:
        """The fitness (under ``"fitness"``) and the metrics named in :attr:`metric_names`, from
        one evaluation; asked instead of :meth:`score` by a run with several objectives. Default:
        the fitness alone."""
        return {"fitness": self.score(genome, state, seed)}

    def final_score(self, genome: Genome, state: MemberState, seed: int) -> dict[str, float]:
        """The final metrics as the engine asks for them (see :meth:`score`)."""
        return self.final_evaluate(genome, state, seed)

    # -- hooks with defaults ------------------------------------------------------------------
    def prepare(self) -> None:
        """Called once in the driver before a run starts: load and check data, build caches.

        Raise :class:`~pbtnas.errors.DataError` / ``ConfigError`` here so a bad data path or
        option stops the run with one message before any member trains.
        """

    @classmethod
    def memory_needs(cls, options: Any) -> list[MemoryNeed]:
        """The largest allocations these options lead to (a batch, a buffer, a set of samples),
        as lower bounds estimated from the options alone: called in the driver before the task is
        built or the run directory exists, so it must neither read data nor allocate. A need
        larger than the machine's memory refuses the run in one line naming the options
        (:mod:`pbtnas.tasks.memory`). Default: none declared."""
        return []

    def mutable_tensors(self, state: MemberState) -> list[tuple[str, str]]:
        """``(model key, tensor name)`` pairs the mutation baseline may perturb.

        Default: every tensor with more than one dimension of every non-shadow model, except
        tensors of normalisation layers (named in :meth:`is_norm_tensor`).
        """
        import torch

        out = []
        for key, sd in state.models.items():
            if key in self.shadow_models:
                continue
            for name, t in sd.items():
                if torch.is_floating_point(t) and t.dim() > 1 and not self.is_norm_tensor(key, name):
                    out.append((key, name))
        return out

    def is_norm_tensor(self, model_key: str, name: str) -> bool:
        """Whether a tensor belongs to a normalisation layer. Override when norms have >1-D tensors."""
        return False

    def is_buffer(self, model_key: str, name: str) -> bool:
        """Whether state-dict entry ``name`` of model ``model_key`` is a buffer, not a parameter.

        Asked by mixing with ``sp_buffers: parameters``, which copies a transplanted layer's
        buffers from the donor instead of shrink-perturbing them. The default recognises
        torch's standard buffers by the last component of the name: BatchNorm's
        ``running_mean``, ``running_var`` and ``num_batches_tracked``, and the power-iteration
        vectors of spectral norm (``weight_u``/``weight_v`` of ``torch.nn.utils.spectral_norm``,
        ``_u``/``_v`` of ``torch.nn.utils.parametrizations.spectral_norm``). A task whose
        networks register other buffers (``register_buffer``) overrides this. Must not depend
        on tensor values: it is asked before any tensor is moved.
        """
        last = name.rsplit(".", 1)[-1]
        return last in {"running_mean", "running_var", "num_batches_tracked", "weight_u", "weight_v", "_u", "_v"}

    def selection_score(self, genome: Genome, state: MemberState, seed: int) -> float:
        """Score on a *selection* split that no fitness evaluation sees, used only by
        ``final_selection: top-k-reevaluated`` to choose among the best members at the end.
        Tasks without such a split leave this as it is (the option is then refused)."""
        raise ConfigError(f"final_selection top-k-reevaluated needs a task with a selection split; {type(self).__name__} has none")

    def check_selection_split(self) -> None:
        """Raise :class:`ConfigError` when :meth:`selection_score` cannot work with these options
        (called in the driver before a top-k-reevaluated run starts)."""
        if type(self).selection_score is Task.selection_score:
            from pbtnas.search.state import MemberState  # imported for type checking only above

            self.selection_score({}, MemberState(), 0)

    def export_info(self) -> dict:
        """Facts ``pbtnas export`` records next to the network: ``options`` (task options that let
        ``pbtnas.load`` rebuild it without the training data), ``input`` (shape, dtype, range) and
        anything a user needs to read its output (e.g. ``classes``). Default: nothing."""
        return {}

    def describe(self) -> dict:
        """Facts about the task for the run directory and ``pbtnas space``."""
        return {"task": type(self).__name__, "fitness": self.fitness_name, "final_metric": self.final_metric_name}

    def report_hints(self) -> ReportHints:
        """What ``pbtnas report`` shows for a run of this task (its headline, the title of the
        training-metrics section, whether to record an episode video): plain data, asked once at
        run start and written into ``run_info.json``, because a report never imports the task
        (see :class:`~pbtnas.rundir.report_hints.ReportHints` for each field and its default).
        Default: the report's defaults."""
        return ReportHints()


__all__ = ["EpisodeRecorder", "HasDataSplits", "ReportHints", "Task", "check_options", "coerce_value", "doc", "options_doc", "parse_options"]
