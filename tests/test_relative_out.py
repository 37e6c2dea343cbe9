"""``--out ../run``: a run directory named with ".." from the folder the run starts in trains,
resumes and exports like any other (the store compared "start/../run" with checkpoint paths
that had the ".." taken out, and stopped at step 0)."""

import json
import subprocess
import sys

import pytest


@pytest.mark.parametrize("backend", ["inprocess", "local"])
def test_out_with_dotdot(tmp_path, backend):
    start = tmp_path / "start"
    start.mkdir()
    run = [sys.executable, "-m", "pbtnas", "run", "simulated", "--population", "4", "--steps", "2"]
    args = [*run, "--backend", backend, "--workers", "1", "--quiet", "--set", "loggers=none", "--out", "../run"]
    done = subprocess.run(args, cwd=start, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps_done"] == 2
    export = subprocess.run(
        [sys.executable, "-m", "pbtnas", "export", "../run", "--out", "../x"], cwd=start, capture_output=True, text=True, timeout=300
    )
    assert export.returncode == 0, export.stderr
    assert (tmp_path / "x" / "export.json").is_file()
