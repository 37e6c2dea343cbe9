"""Refuse, before anything is built, a run whose options would exhaust the machine's memory.

Two kinds of need are weighed against the machine's physical memory: what the task declares for
its options (:meth:`~pbtnas.tasks.base.Task.memory_needs`: a batch, a buffer, a set of samples) and
what the engine keeps per member (the population's bookkeeping: a record and a genome per slot).
The task's needs are checked from its options alone, before the task is built (building it may be
the allocation: a search space of ``task.layers=1e8`` layers); the population's once the task is
built (cheaply, now that its options are sane) and its number of genes known. Both happen before
the run directory is created, so a refused run leaves nothing behind.
"""

from __future__ import annotations

from pbtnas.config import RunConfig
from pbtnas.errors import ConfigError
from pbtnas.tasks.memory import MemoryNeed, human_bytes, machine_memory

#: driver bytes per member besides its genome's entries (its slot record and genome dict);
#: measured about 0.5 kB on CPython 3.11, counted at half so that only what cannot fit is refused
MEMBER_BYTES = 256
#: bytes per gene of a member's genome (a dict entry; measured 32 on CPython 3.11)
GENE_BYTES = 32


def population_need(population: int, genes: int) -> MemoryNeed:
    """The population's bookkeeping in the driver: a slot record and a genome per member."""
    return MemoryNeed(("population",), population * (MEMBER_BYTES + GENE_BYTES * genes), "the driver's record of every member")


def check_memory(config: RunConfig, total: int | None = None) -> None:
    """Raise one :class:`ConfigError` when a need of this run exceeds ``total`` bytes (default:
    this machine's memory), naming the options that size it, the estimate and the memory. Builds
    the task (cached per process, so the runner's own build is free) once its options pass."""
    from pbtnas.tasks import build_task, portable_task_config

    total = machine_memory() if total is None else total
    if not total:
        return  # the platform does not say: nothing to weigh against
    values = {"population": config.population, **check_task_memory(config.task, total)}
    # the population first with no genes, so that a huge one is refused before the task is built
    _refuse_over(population_need(config.population, 0), values, total)
    genes = len(build_task(portable_task_config(config.task)).space)
    _refuse_over(population_need(config.population, genes), values, total)


def check_task_memory(task: dict, total: int | None = None) -> dict:
    """The task's part of :func:`check_memory`, from its options alone (before it is built; also
    for ``pbtnas space``, which builds the task and nothing else). Returns the options by
    ``task.NAME``."""
    from pbtnas.tasks import task_class
    from pbtnas.tasks.base import parse_options

    total = machine_memory() if total is None else total
    task_config = dict(task)
    cls = task_class(str(task_config.pop("name", "")))
    options = parse_options(cls.Options, task_config, where="task")
    values = {f"task.{k}": v for k, v in vars(options).items()}
    if total:
        for need in cls.memory_needs(options):
            _refuse_over(MemoryNeed(tuple(f"task.{o}" for o in need.options), need.nbytes, need.what), values, total)
    return values


def _refuse_over(need: MemoryNeed, values: dict, total: int) -> None:
    if need.nbytes <= total:
        return
    if any(isinstance(values.get(o), (int, float)) and values[o] < 0 for o in need.options):
        return  # a negative size is the task's own error to name, not a memory need
    named = " with ".join(f"{option}={values.get(option)}" for option in need.options)
    raise ConfigError(
        f"{named} would need about {human_bytes(need.nbytes)} of memory for {need.what}, more than "
        f"this machine's {human_bytes(total)}: lower {'it' if len(need.options) == 1 else 'them'}"
    )
