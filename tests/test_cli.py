"""The command line as a user meets it: smoke runs, kill -9 and resume, clear errors."""

import json
import os
import signal
import subprocess
import sys

import pytest

from pbtnas.cli import main
from pbtnas.rundir.store import RunStore

TINY = [
    "--set",
    "task.dataset=digits",
    "--set",
    "task.width=4",
    "--set",
    "task.cells=2",
    "--set",
    "task.batches_per_step=3",
    "--population",
    "4",
    "--steps",
    "3",
    "--seed",
    "5",
]


def cli(*args, env=None, **kwargs):
    return subprocess.run([sys.executable, "-m", "pbtnas", *args], capture_output=True, text=True, env={**os.environ, **(env or {})}, **kwargs)


def test_run_status_and_space(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "classification", *TINY, "--backend", "inprocess", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    summary = json.loads(printed.out)
    assert summary["steps_done"] == 3 and summary["final_metric_name"] == "test_accuracy"
    assert "step 3/3" in printed.err and "best" in printed.err and "left" in printed.err
    assert main(["status", str(out)]) == 0
    table = capsys.readouterr().out
    assert "slot  member  born  parents  fitness  genome" in table and "finished" in table
    assert main(["space", "classification"]) == 0
    assert "cell0.op0" in capsys.readouterr().out


def test_run_with_the_default_relative_run_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "classification", *TINY, "--backend", "inprocess"]) == 0
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "summary.json").exists()
    assert main(["status", str(runs[0].relative_to(tmp_path))]) == 0
    assert main(["resume", str(runs[0].relative_to(tmp_path)), "--quiet"]) == 0


def test_yaml_config_with_preset_base(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "preset: classification-digits\npopulation: 4\nsteps: 2\nbackend: inprocess\ntask:\n  width: 4\n  cells: 2\n  batches_per_step: 2\n"
    )
    assert main(["run", str(cfg), "--algorithm", "mutation", "--out", str(tmp_path / "r")]) == 0
    assert json.loads(capsys.readouterr().out)["algorithm"] == "mutation"


@pytest.mark.parametrize(
    "args,message",
    [
        (["run", "no-such-preset"], "unknown preset 'no-such-preset'"),
        (["run", "classification", "--set", "colour=red"], "unknown config key(s) ['colour']"),
        (["run", "classification", "--set", "task.colour=red"], "unknown task option(s) ['colour']"),
        (["run", "classification", "--population", "3"], "--population: must be at least 4 (got 3)"),
        (["run", "classification", "--set", "tau=0.9"], "lower tau"),
        (["run", "classification", "--set", "population=lots"], "population: must be an integer (got 'lots')"),
        (
            ["run", "classification", "--set", "task.dataset=npz", "--set", "task.data_path=missing.npz"],
            "task.data_path 'missing.npz' does not exist",
        ),
        (["run", "missing.yaml"], "config file 'missing.yaml' does not exist"),
        (["resume", "nowhere"], "not a pbtnas run directory"),
        (["status", "nowhere"], "no population.json"),
    ],
)
def test_user_mistakes_give_one_clear_line(tmp_path, capsys, args, message):
    code = main(args + ["--out", str(tmp_path / "r")] if args[0] == "run" else args)
    err = capsys.readouterr().err
    assert code == 2, err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0], err


def test_error_in_a_subprocess_has_no_traceback():
    result = cli("run", "no-such-preset")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: unknown preset")


def test_kill_9_mid_step_then_resume_matches_uninterrupted(tmp_path):
    args = [
        "classification",
        "--set",
        "task.dataset=digits",
        "--set",
        "task.width=4",
        "--set",
        "task.cells=2",
        "--set",
        "task.batches_per_step=3",
        "--population",
        "4",
        "--steps",
        "3",
        "--seed",
        "11",
        "--backend",
        "local",
        "--workers",
        "2",
        "--quiet",
    ]
    # the unbroken reference runs in this process (one interpreter start fewer)
    assert main(["run", *args, "--backend", "inprocess", "--out", str(tmp_path / "ref")]) == 0
    out = tmp_path / "killed"
    # SIGKILL of the driver right after it handed the first job of step 1 to a worker: mid-step,
    # at the same moment every time (no polling for a window)
    killed = subprocess.run(
        [sys.executable, "-m", "pbtnas", "run", *args, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PBTNAS_FAULT": "dispatched:1:kill"},
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    # lookahead may hand out step 1's first job before step 0 is committed: either way mid-run
    assert RunStore(out).read_manifest()["step_done"] in (-1, 0)
    resumed = cli("resume", str(out), "--quiet", timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    a, b = json.loads((tmp_path / "ref" / "summary.json").read_text()), json.loads(resumed.stdout)
    for key in ("best_fitness", "final_metric", "steps_done"):
        assert a[key] == b[key], key
    ref_trace = [(e["step"], e["uid"], e["fitness"]) for e in RunStore(tmp_path / "ref").iter_events("member_trained")]
    got_trace = [(e["step"], e["uid"], e["fitness"]) for e in RunStore(out).iter_events("member_trained")]
    assert sorted(ref_trace) == sorted(got_trace)


def test_output_cut_short_by_the_reader_is_not_a_traceback(monkeypatch):
    # `pbtnas space PRESET | head -1`: the reader has gone before pbtnas writes
    read_end, write_end = os.pipe()
    os.close(read_end)
    stdout = open(write_end, "w", buffering=1)  # line-buffered: the first line hits the closed pipe
    monkeypatch.setattr(sys, "stdout", stdout)
    try:
        assert main(["space", "simulated"]) == 141
    finally:
        stdout.close()


def test_version(capsys):
    import pbtnas

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.strip() == f"pbtnas {pbtnas.__version__}"
