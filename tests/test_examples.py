"""The examples as a user runs them: a script that defines its task and calls pbtnas.run, killed
(SIGKILL, injected right after step 1) and resumed from the CLI, then status, export and
pbtnas.load from another directory; the result equals an uninterrupted run of the same config
given to the CLI as a YAML file that names the task by its file."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pbtnas.rundir.store import RunStore

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PBTNAS = [sys.executable, "-m", "pbtnas.cli"]
EXAMPLES = {"mlp_regression.py": "DiabetesMLP", "sequence_classification.py": "Waveforms"}


def _run(cmd, cwd, **env):
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONUNBUFFERED": "1", **env})


def _trace(run_dir):
    return [(e["step"], e["uid"], e["fitness"]) for e in RunStore(run_dir).iter_events("member_trained")]


# the sequence example in the default suite, the regression one (the slower of the two, the same
# path through the kill, resume and export) with the slow tests: the default suite's budget
@pytest.mark.parametrize("script", [pytest.param(s, marks=[pytest.mark.slow] if s == "mlp_regression.py" else []) for s in sorted(EXAMPLES)])
def test_example_survives_a_kill_resumes_and_exports(tmp_path, script):
    path = os.path.join(ROOT, "examples", script)
    killed = tmp_path / "killed"
    budget = ["--population", "4", "--steps", "3", "--workers", "2"]
    done = _run([sys.executable, path, "--out", str(killed), *budget], cwd=tmp_path, PBTNAS_FAULT="after-step:1:kill")
    assert done.returncode == -9, done.stderr[-2000:]
    resumed = _run([*PBTNAS, "resume", str(killed), "--quiet"], cwd=ROOT)
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    config = tmp_path / "config.yaml"
    config.write_text(f"task:\n  name: {path}:{EXAMPLES[script]}\npopulation: 4\nsteps: 3\nworkers: 2\n")
    whole = _run([*PBTNAS, "run", str(config), "--out", str(tmp_path / "whole"), "--quiet"], cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr[-2000:]
    assert _trace(killed) == _trace(tmp_path / "whole")

    status = _run([*PBTNAS, "status", str(killed)], cwd=tmp_path)
    assert status.returncode == 0 and EXAMPLES[script] in status.stdout
    export = _run([*PBTNAS, "export", str(killed), "--out", str(tmp_path / "net")], cwd=tmp_path)
    assert export.returncode == 0, export.stderr[-2000:]
    check = (
        "import json, torch, pbtnas; net = pbtnas.load('net'); x = torch.load('net/example_input.pt'); "
        "print(json.dumps([type(net).__name__, torch.allclose(net(x), torch.load('net/example_output.pt'))]))"
    )
    loaded = _run([sys.executable, "-c", check], cwd=tmp_path)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    name, same = json.loads(loaded.stdout.strip().splitlines()[-1])
    assert same and name != "RecursiveScriptModule"  # rebuilt from the task file, not the TorchScript fallback
