"""Benchmark scripts start however they are launched: as ``python benchmarks/X.py`` (the script's
folder first on sys.path) and with ``PYTHONSAFEPATH=1`` (not on it), from any folder."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("script", ["mo_evidence.py", "evidence.py"])
@pytest.mark.parametrize("safe_path", ["1", ""])
def test_evidence_scripts_find_their_sibling_module_either_way(safe_path, script, tmp_path):
    env = {**os.environ, "PYTHONSAFEPATH": safe_path}
    env.pop("PYTHONPATH", None)  # nothing but the script's own doing puts benchmarks/ on the path
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--help"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert f"usage: {script}" in done.stdout


def test_the_reference_point_sensitivity_is_rebuilt_from_the_committed_summaries():
    """docs/RESULTS.md's multi-objective sensitivity table comes from the committed run summaries:
    the script recomputes it, and the shared reference point's row is the one compare reported."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "mo_reference_sensitivity.py")], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| fitness=")]
    assert len(rows) == 4
    results = (ROOT / "docs" / "RESULTS.md").read_text()
    assert "| 0.7705, 99,391 (the shared point above) | 6 of 6, 0.016 | 6 of 6, 0.016 |" in results
    assert rows[0].endswith("| 6 of 6, p = 0.0156 | 6 of 6, p = 0.0156 |")
