"""What a run does before its first member trains (issue #19, start-up): structure, never timings
(benchmarks/startup.py prints those)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from pbtnas.cli import main
from pbtnas.tasks import check_memo

ROOT = Path(__file__).resolve().parents[1]


def test_a_built_in_task_gets_only_the_structural_check_and_no_memo(tmp_path, monkeypatch, capsys):
    """A built-in preset's start: no evaluations, no fresh process, nothing remembered or printed."""
    monkeypatch.setenv("PBTNAS_CACHE", str(tmp_path / "cache"))
    real = check_memo.check_task
    calls = []
    monkeypatch.setattr(check_memo, "check_task", lambda *a, **k: calls.append(k) or real(*a, **k))
    args = ["simulated", "--backend", "inprocess", "--population", "4", "--steps", "1", "--quiet", "--set", "loggers=none"]
    args += ["--set", "task.step_seconds=0.0", "--out", str(tmp_path / "run")]
    assert main(["run", *args]) == 0
    assert calls == [{"seed": 0, "train": False, "evaluate": False, "fresh_process": False}]
    assert "task check" not in capsys.readouterr().err
    assert not (tmp_path / "cache" / "checks").exists()


def _benchmark():
    spec = importlib.util.spec_from_file_location("startup_benchmark", ROOT / "benchmarks" / "startup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_benchmark_reads_the_first_member_from_the_journal(tmp_path):
    journal = tmp_path / "journal.jsonl"
    events = [
        {"event": "run_started", "time": 100.0},
        {"event": "member_created", "time": 100.1},
        {"event": "member_trained", "time": 103.0, "seconds": 2.0},  # began at 101.0
        {"event": "member_trained", "time": 102.5, "seconds": 1.0},  # began at 101.5, first result
    ]
    journal.write_text("".join(json.dumps(e) + "\n" for e in events))
    t = _benchmark().first_member_latency(journal)
    assert (t["step"] - t["run_started"], t["result"] - t["run_started"]) == (1.0, 2.5)
