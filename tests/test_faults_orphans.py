"""A killed driver leaves no process behind: its local workers (idle, mid-step, or still starting
up and importing torch) and the multiprocessing resource tracker exit soon after. The driver kills
itself at a chosen point (``PBTNAS_FAULT``), so no timing window is polled for.

Time is counted from the moment the driver is seen dead (``wait``), not from the end of its
output: the workers inherit the driver's stderr, so a pipe on it would close only once the last
of them is gone."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

PBTNAS = [sys.executable, "-m", "pbtnas"]
#: issue 20: a worker still importing torch when its driver died lived on for about 12 s
STARTUP_BOUND_S = 2.0


def session_members(sid: int) -> list[tuple[int, str]]:
    """(pid, command) of every live process in session ``sid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[3]) == sid:  # state, ppid, pgrp, session
            found.append((int(entry.name), cmd.strip()))
    return found


def run_until_killed(cmd: list[str], fault: str, tmp_path: Path) -> tuple[int, float, list]:
    """Start ``cmd`` in a session of its own with ``fault``; wait for the driver to kill itself;
    return its pid, seconds until nothing of its session was left (or 10 s) and what was left."""
    env = {**os.environ, "PBTNAS_FAULT": fault}
    with open(tmp_path / "driver.err", "wb") as err:
        driver = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=err)
    try:
        driver.wait(timeout=300)
        died = time.monotonic()
        assert driver.returncode == -9, (tmp_path / "driver.err").read_text()[-2000:]
        left = session_members(driver.pid)
        while left and time.monotonic() - died < 10:
            time.sleep(0.05)
            left = session_members(driver.pid)
        return driver.pid, time.monotonic() - died, left
    finally:
        for pid, _ in session_members(driver.pid):
            try:
                os.kill(pid, 9)
            except OSError:
                pass


def simulated_run(out: Path, step_seconds: float) -> list[str]:
    return PBTNAS + [
        "run",
        "simulated",
        "--population",
        "4",
        "--steps",
        "3",
        "--workers",
        "2",
        "--quiet",
        "--set",
        f"task.step_seconds={step_seconds}",
        "--set",
        "task.unevenness=0",
        "--set",
        "loggers=none",
        "--out",
        str(out),
    ]


needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


@needs_proc
@pytest.mark.parametrize("fault", ["after-step:0:kill", "dispatched:1:kill"])
def test_no_worker_outlives_a_killed_driver(tmp_path, fault):
    """Idle workers (after a step) and busy ones (mid-step)."""
    # a busy worker's step outlasts the 6 s bound below, so a worker that only noticed its
    # driver's death when its step ended would fail; step 0 (two rounds of it) runs first
    step_seconds = 10 if fault.startswith("dispatched") else 0.1
    _, seconds, left = run_until_killed(simulated_run(tmp_path / "r", step_seconds), fault, tmp_path)
    assert left == [], f"still alive {seconds:.1f} s after the driver's death: {left}"
    assert seconds < 6


@needs_proc
def test_a_worker_still_starting_up_exits_with_its_driver(tmp_path):
    """The driver dies right after it started its first worker, which is then still starting its
    interpreter or importing torch: none of its processes is alive 2 s later."""
    _, seconds, left = run_until_killed(simulated_run(tmp_path / "r", 0.1), "spawned:0:kill", tmp_path)
    assert left == [], f"still alive {seconds:.1f} s after the driver's death: {left}"
    assert seconds < STARTUP_BOUND_S, f"the last process of the run exited {seconds:.2f} s after the driver's death"


@needs_proc
def test_a_worker_started_from_another_thread_exits_with_its_driver(tmp_path):
    """A run started from a thread other than the main one (where Linux's parent-death signal
    cannot be used) still leaves nothing behind: the worker's watch thread sees the driver go.
    (The driver is ``python -c``: multiprocessing re-imports a driver *script* in each worker
    before the worker's own first instruction, see docs/faults.md.)"""
    code = (
        "import threading, pbtnas\n"
        f"kwargs = dict(out={str(tmp_path / 'r')!r}, population=4, steps=2, workers=1, loggers=['none'], task={{'step_seconds': 0.1}})\n"
        "thread = threading.Thread(target=pbtnas.run, args=('simulated',), kwargs=kwargs)\n"
        "thread.start()\n"
        "thread.join()\n"
    )
    _, seconds, left = run_until_killed([sys.executable, "-c", code], "spawned:0:kill", tmp_path)
    assert left == [], f"still alive {seconds:.1f} s after the driver's death: {left}"
    assert seconds < STARTUP_BOUND_S, f"the last process of the run exited {seconds:.2f} s after the driver's death"
