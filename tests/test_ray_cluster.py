"""Joining a separately started Ray cluster by address (``ray start --head``); slow."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

pytest.importorskip("ray")

from pbtnas.config import config_from_dict  # noqa: E402
from pbtnas.engine.runner import Runner  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def forget_cluster(port: int) -> None:
    """Remove Ray's "current cluster" note if it names our (now stopped) head: `ray stop` would
    remove it but also stops every other Ray on the machine; a stale note makes a later plain
    ``ray.init()`` try to join the dead cluster."""
    from pathlib import Path

    note = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
    try:
        if note.read_text().strip().endswith(f":{port}"):
            note.unlink()
    except OSError:
        pass


@pytest.mark.slow
def test_run_on_a_cluster_started_with_ray_start(tmp_path):
    ray_cli = shutil.which("ray", path=os.path.dirname(sys.executable))
    if ray_cli is None:
        pytest.skip("the ray command is not installed next to this Python")
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    port = free_port()
    head = subprocess.Popen(
        [ray_cli, "start", "--head", "--port", str(port), "--num-cpus", "2", "--include-dashboard", "false", "--block"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        args = ["--population", "4", "--steps", "2", "--seed", "8", "--set", "task.step_seconds=0.1"]
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pbtnas",
                "run",
                "simulated",
                *args,
                "--backend",
                "ray",
                "--address",
                f"127.0.0.1:{port}",
                "--cpus-per-member",
                "0.5",
                "--out",
                str(tmp_path / "run"),
                "--quiet",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert proc.returncode == 0, proc.stderr
    finally:
        head.send_signal(signal.SIGTERM)  # `ray start --block` stops the processes it started
        try:
            head.wait(timeout=60)
        finally:
            try:
                os.killpg(head.pid, signal.SIGKILL)  # whatever of this head's group is left
            except ProcessLookupError:
                pass
            forget_cluster(port)
    summary = json.loads((tmp_path / "run/summary.json").read_text())
    data = {"task": {"name": "simulated", "step_seconds": 0.0}, "population": 4, "steps": 2, "seed": 8, "backend": "inprocess"}
    reference = Runner(config_from_dict(data), tmp_path / "ref", progress=False).start().run()
    assert summary["best_genome"] == reference["best_genome"] and summary["final_metric"] == reference["final_metric"]
