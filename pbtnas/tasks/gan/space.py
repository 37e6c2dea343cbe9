"""The "gan" (21 genes) and "gan-hard" (72 genes) search spaces and the module path each
weight-owning gene owns (docs/algorithm.md §5).

Gene names start with ``g.`` (generator) or ``d.`` (discriminator). Module paths are those of
:class:`~pbtnas.tasks.gan.generator.Generator` and
:class:`~pbtnas.tasks.gan.discriminator.SearchDiscriminator`.
"""

from __future__ import annotations

from pbtnas.search.space import Gene, SearchSpace
from pbtnas.tasks.gan.ops import CONVS, DOWNSAMPLES, OPS, UPSAMPLES

N_CELLS = 3
CELL_OPS = ("c0", "c1", "c2", "c3", "c4")
#: projection ``linear`` options: which part of z, projected to which resolution
PROJ_TARGETS = ("z-bottom", "z-prev", "z-cell", "third-bottom", "third-prev", "third-cell")
UP_MODES = ("nearest", "bilinear")
DROPOUTS = (0.0, 0.1, 0.2)
D_BLOCKS = 4
D_OPS = ("c0", "c1", "c2", "c3", "c4", "c5", "c6")
SPACES = ("gan", "gan-hard")


def _cell_genes() -> list[Gene]:
    genes = []
    for i in range(N_CELLS):
        for edge in ("up0", "up1"):
            genes.append(Gene(f"g.cell{i}.{edge}", UPSAMPLES, True, f"upsampling edge {edge} of generator cell {i}"))
        for op in CELL_OPS:
            genes.append(Gene(f"g.cell{i}.{op}", OPS, True, f"operation {op} of generator cell {i}"))
    return genes


def _projection_genes() -> list[Gene]:
    genes = []
    for k in range(N_CELLS):
        if k > 0:  # projection 0 feeds the first cell and is always on
            genes.append(Gene(f"g.proj{k}.enabled", (False, True), False, f"whether noise projection {k} is used"))
        genes.append(Gene(f"g.proj{k}.linear", PROJ_TARGETS, True, f"part of z and target resolution of projection {k}"))
        genes.append(Gene(f"g.proj{k}.up_mode", UP_MODES, False, f"upsampling of projection {k} to its cell's input"))
        genes.append(Gene(f"g.proj{k}.dropout", DROPOUTS, False, f"dropout after projection {k}"))
    return genes


def _disc_genes() -> list[Gene]:
    genes = []
    for b in range(D_BLOCKS):
        for j, op in enumerate(D_OPS):
            # Ops reading the image in the first block must change the channel count.
            options = CONVS if (b == 0 and j < 3) else OPS
            genes.append(Gene(f"d.block{b}.{op}", options, True, f"operation {op} of discriminator block {b}"))
        genes.append(Gene(f"d.block{b}.downsample", (False, True), False, f"whether discriminator block {b} halves the resolution"))
        for edge in ("down0", "down1"):
            genes.append(Gene(f"d.block{b}.{edge}", DOWNSAMPLES, True, f"downsampling of branch {edge[-1]} of block {b}"))
    return genes


def build_space(name: str) -> SearchSpace:
    """The search space called ``name`` ("gan" or "gan-hard")."""
    if name == "gan":
        return SearchSpace(_cell_genes(), name="gan")
    if name == "gan-hard":
        return SearchSpace(_cell_genes() + _projection_genes() + _disc_genes(), name="gan-hard")
    raise ValueError(f"unknown GAN search space {name!r}; expected one of {SPACES}")


def gene_modules(space: SearchSpace, gene: str) -> dict[str, list[str]]:
    """Model key -> module prefixes owned by ``gene`` (empty for weightless genes)."""
    if not space[gene].owns_weights:
        return {}
    part, unit, slot = gene.split(".")
    if part == "g" and unit.startswith("cell"):
        return {"gen": [f"cells.{unit[len('cell') :]}.{slot}"]}
    if part == "g" and unit.startswith("proj"):
        return {"gen": [f"projs.{unit[len('proj') :]}.{slot}"]}
    if part == "d":
        return {"disc": [f"blocks.{unit[len('block') :]}.{slot}"]}
    raise ValueError(f"gene {gene!r} owns weights but no module path is known for it")
