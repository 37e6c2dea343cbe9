"""What a task's options will cost in memory, said before anything is allocated.

A number typed one order of magnitude too large (``task.batch_size=1e9``, ``task.image_size=800000``)
used to surface as a ``MemoryError`` traceback, a worker killed for memory, or a machine swapping
to a halt, often after the run directory was made. A task declares instead, from its options
alone, the largest allocations they lead to (:meth:`~pbtnas.tasks.base.Task.memory_needs`), and the
engine refuses a run whose need exceeds the machine's memory before it builds the task or creates
the run directory (:func:`pbtnas.engine.memory.check_memory`).

Estimates are lower bounds of one allocation (one batch, one buffer, one set of samples), never
sums of guesses: a refusal must be certain, so that a run that fits is never turned away.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

#: bytes of a float32 / int64 element
F32 = 4
I64 = 8


@dataclass(frozen=True)
class MemoryNeed:
    """One allocation a run will make: the options that size it, its bytes, and what it is.

    ``options`` are option names as the config spells them (``"batch_size"`` for a task option,
    which the engine shows as ``task.batch_size``); ``what`` completes "for ..." in the error line
    (e.g. ``"a training batch of 1000000000 images of 1x28x28"``)."""

    options: tuple[str, ...]
    nbytes: float
    what: str


def machine_memory() -> int | None:
    """This machine's physical memory in bytes (psutil when installed, else ``os.sysconf``), or
    None where neither can tell (then nothing is refused)."""
    try:
        import psutil

        return int(psutil.virtual_memory().total)
    except Exception:  # not installed, or no answer on this platform: ask the OS directly
        pass
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    return pages * size if pages > 0 and size > 0 else None


def human_bytes(nbytes: float) -> str:
    """``1.5 TB``-style size (decimal units, as ``free -h`` and disk makers count)."""
    value = float(nbytes)
    for unit in ("bytes", "kB", "MB", "GB", "TB", "PB", "EB"):
        if abs(value) < 1000 or unit == "EB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.3g} {unit}"
        value /= 1000
    return f"{value:.3g} EB"  # pragma: no cover - the loop returns
