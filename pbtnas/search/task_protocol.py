"""What the search operators ask of a task, declared where the operators live.

Mixing, mutation and shape adaptation need six things of a task: its search space, which
module paths a gene owns, its shadow models, a fresh member, which tensors are buffers and which
tensors mutation may perturb. :class:`~pbtnas.tasks.base.Task` has them all; the operators are
typed against this protocol rather than against ``Task`` so that the search layer does not
import the task layer above it (docs/architecture.md). mypy checks that every ``Task`` fits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Protocol

from pbtnas.search.space import Genome, SearchSpace

if TYPE_CHECKING:  # torch: reading a genome needs none
    from pbtnas.search.state import MemberState


class TaskProtocol(Protocol):
    """The part of :class:`~pbtnas.tasks.base.Task` the operators use; see that class for each
    member's contract."""

    #: shadow model key -> the model it shadows (EMA generator, target critic)
    shadow_models: ClassVar[dict[str, str]]
    space: SearchSpace

    def gene_modules(self, gene: str) -> dict[str, list[str]]:
        """Module path prefixes a weight-owning gene owns, per model key."""
        ...

    def init_state(self, genome: Genome, seed: int) -> MemberState:
        """A freshly initialised member seeded by ``seed``."""
        ...

    def is_buffer(self, model_key: str, name: str) -> bool:
        """Whether state-dict entry ``name`` of model ``model_key`` is a buffer."""
        ...

    def mutable_tensors(self, state: MemberState) -> list[tuple[str, str]]:
        """``(model key, tensor name)`` pairs the mutation baseline may perturb."""
        ...
