"""A driver killed mid-run on the Ray backend: ``pbtnas resume`` continues and nothing finished is lost."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("ray")

from run_helpers import fitness_trace  # noqa: E402

from pbtnas.config import config_from_dict  # noqa: E402
from pbtnas.engine.runner import Runner  # noqa: E402
from pbtnas.rundir.store import RunStore  # noqa: E402

ARGS = ["--population", "4", "--steps", "4", "--seed", "5", "--set", "task.step_seconds=0.5", "--set", "task.layers=3", "--set", "task.width=4"]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_killed_driver_resumes_on_ray(tmp_path, mode):
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "pbtnas",
        "run",
        "simulated",
        *ARGS,
        "--backend",
        "ray",
        "--cpus-per-member",
        "0.5",
        "--mode",
        mode,
        "--out",
        str(out),
        "--quiet",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 180
    while time.time() < deadline:
        if any(e["event"] == "step_done" and e["step"] >= 1 for e in RunStore(out).events()):
            break
        time.sleep(0.2)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("the run never finished step 2")
    os.kill(proc.pid, signal.SIGKILL)  # the driver only; Ray's own processes go with it or linger harmlessly
    proc.wait()
    committed = json.loads((out / "population.json").read_text())
    assert not committed["finished"] and committed["step_done"] >= 1
    before = [e for e in fitness_trace(out) if e[0] <= committed["step_done"]]
    done_keys = {(slot, step) for slot, n in enumerate(committed.get("slot_steps") or [committed["step_done"] + 1] * 4) for step in range(n)}

    resumed = subprocess.run([sys.executable, "-m", "pbtnas", "resume", str(out), "--quiet"], env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["finished"] and summary["steps_done"] == 4
    after = fitness_trace(out)
    assert [e for e in after if e[0] <= committed["step_done"]] == before  # committed steps kept as they were
    for key in done_keys:  # ... and none was trained again
        assert sum(1 for e in after if (e[1], e[0]) == key) == 1, key
    assert any(e["event"] == "run_resumed" for e in RunStore(out).events())
    if mode == "sync":  # the synchronous run is order-independent: identical to an unbroken run
        data = {
            "task": {"name": "simulated", "step_seconds": 0.0, "layers": 3, "width": 4},
            "population": 4,
            "steps": 4,
            "seed": 5,
            "backend": "inprocess",
        }
        reference = Runner(config_from_dict(data), tmp_path / "ref", progress=False).start().run()
        assert after == fitness_trace(tmp_path / "ref")
        assert summary["best_genome"] == reference["best_genome"]
