"""benchmarks/identical_runs.py --check: small fixed-seed runs still give the fingerprints committed
in benchmarks/fingerprints.json (on the platform they were made on), so a change that moves the
results of the engine or a task's training is noticed. After an intended change:
``python benchmarks/identical_runs.py --update`` and commit the file."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "identical_runs.py"
#: about 20 s together on 2 busy cores; gan (19 s) and gan-hard (30-50 s) run in the slow test
CHEAP = ("classification", "rl", "gan-channels-last")


def check(names, tmp_path) -> None:
    if "rl" in names:
        pytest.importorskip("dm_control")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--check", "--only", *names],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    if "cannot compare on this platform" in done.stdout:
        pytest.skip(done.stdout.strip())
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"all {len(names)} runs identical" in done.stdout


def test_cheap_runs_keep_their_committed_fingerprints(tmp_path):
    check(CHEAP, tmp_path)


@pytest.mark.slow
def test_every_run_keeps_its_committed_fingerprint(tmp_path):
    committed = json.loads((ROOT / "benchmarks" / "fingerprints.json").read_text())
    check(list(committed["runs"]), tmp_path)


def test_a_moved_fingerprint_is_named_and_another_platform_is_not_compared(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("identical_runs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = json.loads((ROOT / "benchmarks" / "fingerprints.json").read_text())
    moved = tmp_path / "fingerprints.json"
    committed["platform"] = module.platform()  # compared on any machine: the hash below moves everywhere
    committed["runs"]["classification"]["summary_sha"] = "0000000000000000"
    moved.write_text(json.dumps(committed))
    assert module.main(["--check", "--only", "classification", "--file", str(moved)]) == 1
    out = capsys.readouterr().out
    assert "run classification: fingerprint moved: summary_sha was '0000000000000000', now '" in out

    committed["platform"] = {"torch": "0.0", "cpu_capability": "NONE"}
    moved.write_text(json.dumps(committed))
    assert module.main(["--check", "--file", str(moved)]) == 0  # runs nothing
    assert "cannot compare on this platform" in capsys.readouterr().out
