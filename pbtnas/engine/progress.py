"""Progress of a run on stderr: step, members done, best fitness so far, time elapsed and left.

On a terminal one live bar (``tqdm``) is redrawn in place; notes (retries, failures, the final
evaluation) are printed above it. When stderr is not a terminal (a log file, CI, a pipe) every
finished member step prints one plain line instead, so logs stay readable and greppable.
``PBTNAS_PROGRESS=plain`` (or ``bar``) forces either form.
"""

from __future__ import annotations

import io
import os
import sys
import time


def _fmt(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _columns(stream) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError, io.UnsupportedOperation):
        return 0


class Progress:
    """Reports finished member steps and notes, estimating time left from the pace of this
    session's finished member steps (a live bar on a terminal, one line each otherwise)."""

    def __init__(self, steps: int, population: int, enabled: bool = True, stream=None, live: bool | None = None):
        self.steps, self.population, self.enabled = steps, population, enabled
        self.stream = stream or sys.stderr
        forced = os.environ.get("PBTNAS_PROGRESS", "").lower()
        if live is None:
            live = {"bar": True, "plain": False}.get(forced, _is_terminal(self.stream))
        self.live = live
        self._bar = None
        self._t0 = time.time()
        self._first_step = 0
        self._done = 0

    def begin(self, first_step: int) -> None:
        self._t0, self._first_step, self._done = time.time(), first_step, 0
        if first_step > 0:
            self.note(f"resuming at step {first_step + 1}/{self.steps}")
        if self.enabled and self.live and self._bar is None:
            from tqdm import tqdm

            total = max(0, (self.steps - first_step) * self.population)
            sized = _columns(self.stream) > 0  # a terminal that reports no size (0x0) gets 100 columns
            self._bar = tqdm(
                total=total,
                file=self.stream,
                unit="member",
                dynamic_ncols=sized,
                ncols=None if sized else 100,
                leave=True,
                desc=self._text(first_step, 0, "-"),
                smoothing=0.1,
                bar_format="{desc} |{bar}| {n_fmt}/{total_fmt} member steps [{elapsed}<{remaining}]",
            )

    def member_done(self, step: int, done_in_step: int, best: float | None, result) -> None:
        self._done += 1
        best_text = f"{best:.4f}" if best is not None and best > float("-inf") else "-"
        if self._bar is not None:
            self._bar.set_description_str(self._text(step, done_in_step, best_text), refresh=False)
            self._bar.update(1)
            return
        elapsed = time.time() - self._t0
        remaining = (self.steps - self._first_step) * self.population - self._done
        left = elapsed / self._done * remaining if self._done else 0.0
        self._print(
            f"step {step + 1}/{self.steps}  members {done_in_step}/{self.population}  best {best_text}  elapsed {_fmt(elapsed)}  left ~{_fmt(left)}"
        )

    def _text(self, step: int, done_in_step: int, best_text: str) -> str:
        return f"step {step + 1}/{self.steps}  members {done_in_step}/{self.population}  best {best_text}"

    def note(self, text: str) -> None:
        self._print(text)

    def finish(self, summary: dict) -> None:
        self.close()
        self._print(
            f"done: best {summary['fitness_name']} {summary['best_fitness']:.4f} (member {summary['best_uid']}), "
            f"final {summary['final_metric_name']} {summary['final_metric']}"
        )

    def close(self) -> None:
        """End the live bar (idempotent); later notes print as plain lines."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _print(self, text: str) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)
