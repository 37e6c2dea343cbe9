"""Progress as a user sees it: one live bar on a terminal (a real pseudo-terminal), one plain line
per finished member step when the output is a pipe or a file."""

import fcntl
import io
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time

from pbtnas.engine.progress import Progress

RUN = ["run", "simulated", "--population", "4", "--steps", "3", "--seed", "1", "--backend", "inprocess", "--set", "task.step_seconds=0.01"]


class Result:
    fitness = 0.5


def _cli_under_pty(args, timeout=120) -> tuple[int, str]:
    """Run the CLI with stdout and stderr on a pseudo-terminal; return (status, everything printed)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # 40 rows, 120 columns
    env = {k: v for k, v in os.environ.items() if k != "PBTNAS_PROGRESS"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pbtnas", *args],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        env={**env, "COLUMNS": "120", "TERM": "xterm"},
        close_fds=True,
    )
    os.close(slave)
    chunks, deadline = [], time.time() + timeout
    while time.time() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(timeout=30), b"".join(chunks).decode("utf-8", "replace")


def test_terminal_gets_one_live_bar_and_a_pipe_gets_plain_lines(tmp_path):
    code, screen = _cli_under_pty([*RUN, "--out", str(tmp_path / "tty")])
    assert code == 0, screen
    # one bar redrawn in place ('\r'), showing step, members, best, elapsed<left; no per-member lines
    assert "\r" in screen and "step 3/3" in screen and "members 4/4" in screen and "best " in screen
    assert "<" in screen and "left ~" not in screen
    lines = [line for line in screen.replace("\r\n", "\n").split("\n") if line.strip()]
    assert len(lines) < 25, screen  # run directory, bar, final evaluation, done, JSON summary
    assert "done: best" in screen and '"steps_done": 3' in screen

    env = {k: v for k, v in os.environ.items() if k != "PBTNAS_PROGRESS"}
    piped = subprocess.run(
        [sys.executable, "-m", "pbtnas", *RUN, "--out", str(tmp_path / "pipe")], capture_output=True, text=True, timeout=120, env=env
    )
    assert piped.returncode == 0, piped.stderr
    member_lines = [line for line in piped.stderr.splitlines() if line.startswith("step ")]
    assert len(member_lines) == 12 and "\r" not in piped.stderr
    assert "members 4/4" in member_lines[-1] and "left ~" in member_lines[-1]


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_live_bar_on_a_terminal_and_notes_above_it(monkeypatch):
    monkeypatch.delenv("PBTNAS_PROGRESS", raising=False)
    out = FakeTerminal()
    progress = Progress(2, 4, stream=out)
    assert progress.live
    progress.begin(0)
    for step in range(2):
        for done in range(1, 5):
            progress.member_done(step, done, 0.25 * done, Result())
    progress.note("final evaluation of member 3 (best-ever) ...")
    progress.finish({"fitness_name": "f", "best_fitness": 1.0, "best_uid": 3, "final_metric_name": "m", "final_metric": 0.9})
    text = out.getvalue()
    assert "step 2/2" in text and "members 4/4" in text and "best 1.0000" in text
    assert "final evaluation of member 3" in text and text.rstrip().endswith("final m 0.9")
    progress.close()  # idempotent


def test_plain_lines_when_not_a_terminal_or_forced(monkeypatch):
    out = io.StringIO()
    progress = Progress(1, 4, stream=out)
    assert not progress.live
    progress.begin(0)
    progress.member_done(0, 1, None, Result())
    assert out.getvalue().startswith("step 1/1  members 1/4  best -  elapsed 0m00s")
    monkeypatch.setenv("PBTNAS_PROGRESS", "plain")
    assert not Progress(1, 4, stream=FakeTerminal()).live
    monkeypatch.setenv("PBTNAS_PROGRESS", "bar")
    assert Progress(1, 4, stream=io.StringIO()).live
    quiet = io.StringIO()
    silent = Progress(1, 4, enabled=False, stream=quiet)
    silent.begin(0)
    silent.member_done(0, 1, 0.5, Result())
    silent.note("x")
    assert quiet.getvalue() == ""
