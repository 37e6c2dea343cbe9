"""A killed driver leaves no process behind: its local workers (idle or mid-step) and the
multiprocessing resource tracker exit within a few seconds. The driver kills itself at a chosen
point (``PBTNAS_FAULT``), so no timing window is polled for."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

PBTNAS = [sys.executable, "-m", "pbtnas"]


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


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
@pytest.mark.parametrize("fault", ["after-step:0:kill", "dispatched:1:kill"])
def test_no_worker_outlives_a_killed_driver(tmp_path, fault):
    env = {**os.environ, "PBTNAS_FAULT": fault}
    cmd = (
        PBTNAS
        + [
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
            "task.step_seconds=20",
            "--set",
            "task.unevenness=0",
            "--set",
            "loggers=none",
            "--out",
            str(tmp_path / "r"),
        ]
        if fault.startswith("dispatched")
        else PBTNAS
        + [
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
            "task.step_seconds=0.1",
            "--set",
            "loggers=none",
            "--out",
            str(tmp_path / "r"),
        ]
    )
    driver = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _, err = driver.communicate(timeout=300)
        assert driver.returncode == -9, err.decode()[-2000:]
        died = time.monotonic()
        left = session_members(driver.pid)
        while left and time.monotonic() - died < 10:
            time.sleep(0.2)
            left = session_members(driver.pid)
        assert left == [], f"still alive {time.monotonic() - died:.1f} s after the driver's death: {left}"
        assert time.monotonic() - died < 6
    finally:
        for pid, _ in session_members(driver.pid):
            try:
                os.kill(pid, 9)
            except OSError:
                pass
