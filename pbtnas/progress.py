"""Progress lines on stderr: step, members done, best fitness so far, time elapsed and left."""

from __future__ import annotations

import sys
import time


def _fmt(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


class Progress:
    """Prints one line per finished member step (and notes), estimating time left from the pace
    of this session's finished member steps."""

    def __init__(self, steps: int, population: int, enabled: bool = True, stream=None):
        self.steps, self.population, self.enabled = steps, population, enabled
        self.stream = stream or sys.stderr
        self._t0 = time.time()
        self._first_step = 0
        self._done = 0

    def begin(self, first_step: int) -> None:
        self._t0, self._first_step, self._done = time.time(), first_step, 0
        if first_step > 0:
            self.note(f"resuming at step {first_step + 1}/{self.steps}")

    def member_done(self, step: int, done_in_step: int, best: float | None, result) -> None:
        self._done += 1
        elapsed = time.time() - self._t0
        remaining = (self.steps - self._first_step) * self.population - self._done
        left = elapsed / self._done * remaining if self._done else 0.0
        best_text = f"{best:.4f}" if best is not None and best > float("-inf") else "-"
        self._print(
            f"step {step + 1}/{self.steps}  members {done_in_step}/{self.population}  "
            f"best {best_text}  elapsed {_fmt(elapsed)}  left ~{_fmt(left)}"
        )

    def note(self, text: str) -> None:
        self._print(text)

    def finish(self, summary: dict) -> None:
        self._print(
            f"done: best {summary['fitness_name']} {summary['best_fitness']:.4f} (member {summary['best_uid']}), "
            f"final {summary['final_metric_name']} {summary['final_metric']}"
        )

    def _print(self, text: str) -> None:
        if self.enabled:
            print(text, file=self.stream, flush=True)
