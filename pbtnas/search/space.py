"""Search spaces: named categorical genes, stratified sampling, validation, JSON round-trip.

A genome is a plain ``dict`` mapping every gene name (in the space's order) to one of that
gene's options. Options are JSON scalars (str, int, float, bool), so a genome is its own JSON.
This module knows nothing about torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np

from pbtnas.errors import GenomeError, SearchSpaceError

Genome = dict[str, Any]


GENE_KINDS = ("architecture", "hyperparameter")


@dataclass(frozen=True)
class Gene:
    """One categorical decision of an architecture (or of its training).

    ``owns_weights`` says whether the position this gene controls holds trainable tensors
    (a layer choice) or not (an activation, a flag). Weightless genes never move weights when
    a child inherits them; a weight-owning gene whose chosen option happens to have no tensors
    ("none", "skip") simply contributes none.

    ``kind`` is ``"architecture"`` or ``"hyperparameter"`` (a learning rate, weight decay, batch
    size, dropout rate): a hyperparameter gene owns no weights, is inherited from the donor with
    ``p_donor`` like any gene, and takes effect on the child's next step. See
    :func:`hyperparameter`.
    """

    name: str
    options: tuple
    owns_weights: bool = True
    doc: str = ""
    kind: str = "architecture"

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise SearchSpaceError(f"a gene name must be a non-empty string, got {self.name!r}")
        if isinstance(self.options, (str, bytes)) or not isinstance(self.options, (tuple, list)):
            raise SearchSpaceError(
                f"gene {self.name!r}: options must be a list or tuple of choices, got {self.options!r} (write ['a', 'b'], not 'ab')"
            )
        object.__setattr__(self, "options", tuple(self.options))
        if not self.options:
            raise SearchSpaceError(f"gene {self.name!r} has no options")
        bad = [o for o in self.options if not isinstance(o, (str, int, float, bool))]
        if bad:
            raise SearchSpaceError(f"gene {self.name!r}: options must be str, int, float or bool (they are written to JSON), got {bad[0]!r}")
        if len(set(map(_option_key, self.options))) != len(self.options):
            raise SearchSpaceError(f"gene {self.name!r} has duplicate options: {self.options}")
        if self.kind not in GENE_KINDS:
            raise SearchSpaceError(f"gene {self.name!r}: kind must be one of {GENE_KINDS}, got {self.kind!r}")
        if self.kind == "hyperparameter" and self.owns_weights:
            raise SearchSpaceError(f"gene {self.name!r} is a hyperparameter and cannot own weights")


def hyperparameter(name: str, options, doc: str = "") -> Gene:
    """A gene for a training hyperparameter (owns no weights), e.g.
    ``hyperparameter("lr", [1e-3, 3e-3, 1e-2])``; read it from the genome where it applies."""
    return Gene(name, options, owns_weights=False, doc=doc, kind="hyperparameter")


def _option_key(option: Any) -> tuple:
    # 1 and 1.0 and True compare equal in Python; options are distinguished by type as well.
    return (type(option).__name__, option)


@dataclass
class SearchSpace:
    """An ordered collection of genes.

    Built once by a task; pure data with sampling and validation helpers.
    """

    genes: list[Gene]
    name: str = "space"
    _index: dict[str, Gene] = field(init=False, repr=False)

    def __post_init__(self):
        if isinstance(self.genes, (str, bytes)) or not isinstance(self.genes, (list, tuple)):
            raise SearchSpaceError(f"a search space needs a list of Gene objects, got {self.genes!r}")
        self.genes = list(self.genes)
        if not self.genes:
            raise SearchSpaceError(f"search space {self.name!r} has no genes")
        self._index = {}
        for gene in self.genes:
            if not isinstance(gene, Gene):
                raise SearchSpaceError(f"search space {self.name!r}: {gene!r} is not a pbtnas.Gene")
            if gene.name in self._index:
                raise SearchSpaceError(f"duplicate gene name {gene.name!r} in space {self.name!r}")
            self._index[gene.name] = gene

    # -- lookup -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.genes)

    def __iter__(self):
        return iter(self.genes)

    def __getitem__(self, name: str) -> Gene:
        return self._index[name]

    @property
    def names(self) -> list[str]:
        return [g.name for g in self.genes]

    @property
    def weight_genes(self) -> list[str]:
        return [g.name for g in self.genes if g.owns_weights]

    @property
    def hyperparameters(self) -> list[str]:
        return [g.name for g in self.genes if g.kind == "hyperparameter"]

    # -- sampling ---------------------------------------------------------------------------
    def random_genome(self, rng: np.random.Generator) -> Genome:
        """One genome with every option drawn uniformly."""
        return {g.name: g.options[int(rng.integers(len(g.options)))] for g in self.genes}

    def stratified_population(self, n: int, rng: np.random.Generator) -> list[Genome]:
        """``n`` genomes where every option of every gene is present about equally often.

        Per gene: a pool holding every option ``n // n_options`` times, padded with uniformly
        random options up to ``n``, shuffled; member ``i`` takes element ``i`` (docs/algorithm.md §2, Initialisation).
        """
        if n < 1:
            raise ValueError("population size must be positive")
        genomes: list[Genome] = [{} for _ in range(n)]
        for gene in self.genes:
            k = len(gene.options)
            pool = list(range(k)) * (n // k)
            pool += [int(i) for i in rng.integers(k, size=n - len(pool))]
            order = rng.permutation(n)
            for member, position in enumerate(order):
                genomes[member][gene.name] = gene.options[pool[position]]
        return genomes

    # -- validation and serialisation -------------------------------------------------------
    def validate(self, genome: Mapping[str, Any]) -> Genome:
        """Return the genome in canonical order or raise :class:`GenomeError` naming the gene."""
        if not isinstance(genome, Mapping):
            raise GenomeError(f"a genome must be a mapping of gene name to option, got {type(genome).__name__}")
        unknown = [k for k in genome if k not in self._index]
        if unknown:
            raise GenomeError(f"unknown gene(s) {unknown} for space {self.name!r}; expected {self.names}")
        missing = [g.name for g in self.genes if g.name not in genome]
        if missing:
            raise GenomeError(f"genome lacks gene(s) {missing} of space {self.name!r}")
        out: Genome = {}
        for gene in self.genes:
            value = genome[gene.name]
            match = [o for o in gene.options if _option_key(o) == _option_key(value)]
            if not match:
                # JSON turns tuples to lists and may turn 0.0 into 0; accept equal numbers.
                match = [o for o in gene.options if _loosely_equal(o, value)]
            if not match:
                raise GenomeError(f"gene {gene.name!r} has option {value!r}, which is not one of {list(gene.options)}")
            out[gene.name] = match[0]
        return out

    def option_index(self, genome: Mapping[str, Any], gene: str) -> int:
        """Position of the genome's option for ``gene`` in that gene's option list."""
        options = self._index[gene].options
        return [_option_key(o) for o in options].index(_option_key(genome[gene]))

    def to_json(self, genome: Mapping[str, Any]) -> str:
        return json.dumps(self.validate(genome))

    def from_json(self, text: str) -> Genome:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise GenomeError(f"genome is not valid JSON: {exc}") from exc
        return self.validate(data)

    def describe(self) -> list[dict]:
        """Rows for ``pbtnas space``: name, options, whether the gene owns weights."""
        return [{"gene": g.name, "options": list(g.options), "owns_weights": g.owns_weights, "kind": g.kind, "doc": g.doc} for g in self.genes]

    def summary(self, genome: Mapping[str, Any], width: int = 60) -> str:
        """A compact one-line rendering of a genome (option indices), for tables."""
        text = "".join(_short(self.option_index(genome, g.name)) for g in self.genes)
        return text if len(text) <= width else text[: width - 1] + "…"


def _short(i: int) -> str:
    return "0123456789abcdefghijklmnopqrstuvwxyz"[i] if i < 36 else "+"


def _loosely_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    return False


def genes_from(items: Iterable[tuple[str, Iterable, bool]]) -> list[Gene]:
    """Shorthand: build genes from ``(name, options, owns_weights)`` triples."""
    return [Gene(name, tuple(options), owns) for name, options, owns in items]
