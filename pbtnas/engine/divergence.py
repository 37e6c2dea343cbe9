"""How much of a run diverged, said in its summary and, past half, in one warning line.

A member whose loss or fitness becomes non-finite gets fitness -inf and is replaced: the run goes
on, as it should. But when most member steps end that way (``task.lr=1e12``: 21 of 30 steps -inf,
best fitness -6.5e23), the run "finishes" with a meaningless result and exit status 0. The
summary therefore always records ``diverged_steps``, the fraction of member steps that diverged,
and the end of a run prints one ``warning:`` line when it is more than half.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

#: above this fraction of diverged member steps the end of the run warns
WARN_ABOVE = 0.5


def diverged_step(event: dict) -> bool:
    """Whether one ``member_trained`` event is a diverged step: the task said so (a non-finite
    loss, :class:`~pbtnas.errors.MemberDiverged`), a ``*loss*`` metric is non-finite, or the
    fitness is not a finite number although the step raised nothing (a Fréchet distance of
    infinity). A step that failed with an error (a crashed worker) is a failure, not a divergence."""
    if event.get("diverged"):
        return True
    if event.get("error"):
        return False
    fitness = event.get("fitness")
    if not isinstance(fitness, (int, float)) or not math.isfinite(fitness):
        return True
    metrics = event.get("metrics") or {}
    return any("loss" in str(key) and isinstance(value, (int, float)) and not math.isfinite(value) for key, value in metrics.items())


def diverged_fraction(events: Iterable[dict]) -> float:
    """The fraction of the run's member steps (its valid ``member_trained`` events) that diverged;
    0.0 for a run without any."""
    steps = [e for e in events if e.get("event") == "member_trained"]
    if not steps:
        return 0.0
    return round(sum(diverged_step(e) for e in steps) / len(steps), 4)


def divergence_warning(summary: dict) -> str | None:
    """The one ``warning:`` line for a summary whose ``diverged_steps`` is over :data:`WARN_ABOVE`
    (None otherwise, and for summaries of runs made before it was recorded)."""
    fraction = summary.get("diverged_steps")
    if not isinstance(fraction, (int, float)) or isinstance(fraction, bool) or not fraction > WARN_ABOVE:
        return None
    best = summary.get("best_fitness")
    shown = f"{best:.4g}" if isinstance(best, (int, float)) else str(best)
    return (
        f"warning: {fraction:.0%} of the member steps diverged (non-finite loss or fitness): the result "
        f"(best {summary.get('fitness_name', 'fitness')} {shown}) may mean little; "
        "a smaller learning rate or gentler options usually help (diverged_steps in summary.json)"
    )
