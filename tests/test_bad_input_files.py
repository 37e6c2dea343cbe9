"""Bad input files and a file system that refuses writes: a damaged or foreign manifest, an invalid
or unsafe run config.yaml, an --out that cannot be written, a disk that fills up mid-run, an error
only a worker can see, a damaged best network. Each is one ``error:`` line (exit 2), never a
traceback, never a half-made run directory, never a lost run; a run stopped by a full disk
resumes to the result of an unbroken run."""

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
from run_helpers import QUICK, fitness_trace

from pbtnas.cli import main
from pbtnas.rundir.store import RunStore


def run_cli(capsys, *args):
    """``pbtnas ARGS`` in this process: (exit code, stderr lines that are not the run-directory
    announcement)."""
    capsys.readouterr()
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, [line for line in err.splitlines() if line.strip() and not line.startswith("run directory:")]


def one_error(capsys, *args) -> str:
    code, lines = run_cli(capsys, *args)
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, lines)
    return lines[0]


def snapshot(folder: Path) -> dict:
    """Content of every file of a run directory (the lock file aside: taking it is not a change)."""
    files = [p for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".pbtnas.lock"]
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def summary_without_time(run_dir):
    summary = RunStore(run_dir).read_summary()
    summary.pop("wall_time_s")
    return summary


# no injected fault leaks into or out of a test (the fixture lives in conftest.py)
pytestmark = pytest.mark.usefixtures("no_fault_left")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An unbroken run and the same run stopped after its second step (the templates)."""
    import os

    base = tmp_path_factory.mktemp("runs")
    assert main(["run", "simulated", *QUICK, "--out", str(base / "full")]) == 0
    os.environ["PBTNAS_FAULT"] = "after-step:1:interrupt"
    try:
        assert main(["run", "simulated", *QUICK, "--out", str(base / "stopped")]) == 130
    finally:
        del os.environ["PBTNAS_FAULT"]
    return base


@pytest.fixture()
def stopped(runs, tmp_path):
    """A copy of the stopped run whose lock names a dead process (as a killed driver leaves it):
    a refused resume must not even journal the lock's takeover."""
    import socket
    import subprocess

    run_dir = tmp_path / "r"
    shutil.copytree(runs / "stopped", run_dir)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (run_dir / ".pbtnas.lock").write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "since": "then"}) + "\n")
    return run_dir


# -- population.json ------------------------------------------------------------------------------
def _manifest_variants(manifest: dict) -> dict:
    def changed(edit):
        data = json.loads(json.dumps(manifest))
        edit(data)
        return json.dumps(data)

    return {
        "empty object": "{}",
        "a list": "[1, 2]",
        "not json": '{"members": [',
        "wrong genome keys": changed(lambda d: d["members"][0].update(genome={"foo": "bar"})),
        "a member without uid": changed(lambda d: d["members"][1].pop("uid")),
        "step_done a string": changed(lambda d: d.update(step_done="x")),
        "best without fitness": changed(lambda d: d["best"].pop("fitness")),
    }


VARIANTS = ["empty object", "a list", "not json", "wrong genome keys", "a member without uid", "step_done a string", "best without fitness"]


@pytest.mark.parametrize("command", ["resume", "status", "export"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_a_damaged_or_foreign_manifest_is_one_error_line(stopped, tmp_path, capsys, command, variant):
    store = RunStore(stopped)
    text = _manifest_variants(json.loads(store.manifest_path.read_text()))[variant]
    store.manifest_path.write_text(text)
    before = snapshot(stopped)
    args = {"resume": ["resume", stopped, "--quiet"], "status": ["status", stopped], "export": ["export", stopped, "--out", tmp_path / "x"]}[command]
    if variant == "wrong genome keys" and command == "export":
        # export reads the genome from the best network's checkpoint, not from the manifest
        assert run_cli(capsys, *args)[0] == 0
        return
    line = one_error(capsys, *args)
    assert "population.json" in line
    assert snapshot(stopped) == before
    assert not (tmp_path / "x").exists()


def test_report_of_a_damaged_manifest_rebuilds_from_the_journal_with_a_note(stopped, capsys):
    RunStore(stopped).manifest_path.write_text("[1, 2]")
    code, errors = run_cli(capsys, "report", stopped)
    assert code == 0 and errors == []
    # printed by the command (stdout): the report says what it could not read
    assert (stopped / "report" / "index.html").is_file()


# -- config.yaml ----------------------------------------------------------------------------------
CONFIGS = {
    "syntax error": ("task: [unclosed\n", "cannot be read"),
    "python object tag": ("!!python/object/apply:os.system ['touch PWNED']\n", "cannot be read"),
    "a list": ("- 1\n- 2\n", "a mapping of keys was expected"),
    "unknown key": (None, "unknown config key(s) ['bogus']"),
    "wrong type": (None, "steps: must be an integer"),
    "task not a section": (None, "needs a 'task' section"),
    "unknown task option": (None, "unknown task option(s) ['bogus']"),
}


def _config_text(stopped: Path, variant: str) -> str:
    import yaml

    text, _ = CONFIGS[variant]
    if text is not None:
        return text
    data = yaml.safe_load((stopped / "config.yaml").read_text())
    if variant == "unknown key":
        data["bogus"] = 1
    elif variant == "wrong type":
        data["steps"] = "many"
    elif variant == "task not a section":
        data["task"] = 5
    elif variant == "unknown task option":
        data["task"]["bogus"] = 1
    return yaml.safe_dump(data)


@pytest.mark.parametrize("command", ["resume", "status", "report", "export"])
@pytest.mark.parametrize("variant", list(CONFIGS))
def test_an_invalid_or_unsafe_run_config_is_one_error_line(stopped, tmp_path, capsys, monkeypatch, command, variant):
    monkeypatch.chdir(tmp_path)
    (stopped / "config.yaml").write_text(_config_text(stopped, variant))
    before = snapshot(stopped)
    args = {
        "resume": ["resume", stopped, "--quiet"],
        "status": ["status", stopped],
        "report": ["report", stopped],
        "export": ["export", stopped, "--out", tmp_path / "x"],
    }[command]
    line = one_error(capsys, *args)
    assert str(stopped / "config.yaml") in line and CONFIGS[variant][1] in line, line
    assert snapshot(stopped) == before and not (stopped / "report").exists()
    assert not (tmp_path / "x").exists()
    assert not (tmp_path / "PWNED").exists()  # the tag built nothing, ran nothing


# -- --out ----------------------------------------------------------------------------------------
def test_run_out_that_is_a_file_or_lies_under_one(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    assert "is a file, not a folder" in one_error(capsys, "run", "simulated", *QUICK, "--out", afile)
    line = one_error(capsys, "run", "simulated", *QUICK, "--out", afile / "sub")
    assert f"{afile} is a file" in line
    assert afile.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_run_out_on_a_folder_that_refuses_files(tmp_path, capsys, monkeypatch):
    """A read-only file system or a folder of another user (tests run as root, who may write
    anywhere: the refusal is injected where the probe file is made)."""
    import errno
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    line = one_error(capsys, "run", "simulated", *QUICK, "--out", tmp_path / "new")
    assert "refuses new files (Permission denied)" in line
    assert not (tmp_path / "new").exists()


def test_export_and_report_out_under_a_file(runs, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("")
    assert "is a file" in one_error(capsys, "export", runs / "full", "--out", afile / "x")
    assert "is a file" in one_error(capsys, "report", runs / "full", "--out", afile / "x")


# -- a file system that refuses writes mid-run ---------------------------------------------------
@pytest.mark.parametrize(
    "fault, file",
    [
        ("write:manifest:enospc:3", r"population\.json"),  # the commit of step 1
        # a member's checkpoint in step 1: the member fails and the next write is its retry's journal
        # event, unless every other member of the step fails first (the dispatch order follows
        # measured step times, which are noise here); then the step's first error names the file
        ("write:checkpoint:enospc:6", r"(journal\.jsonl|checkpoints/step_0001/uid\d{4}\.pt)"),
        ("write:journal:edquot:14", r"journal\.jsonl"),
        ("write:best:erofs:2", r"best/member\.pt"),
        ("write:summary:enospc", r"summary\.json"),
    ],
)
def test_a_write_refused_mid_run_stops_it_and_resume_gives_the_unbroken_result(runs, tmp_path, capsys, monkeypatch, fault, file):
    run_dir = tmp_path / "r"
    monkeypatch.setenv("PBTNAS_FAULT", fault)
    line = one_error(capsys, "run", "simulated", *QUICK, "--out", run_dir)
    assert re.search(f"cannot write {re.escape(str(run_dir))}/{file}:", line) and f"continue with: pbtnas resume {run_dir}" in line, line
    monkeypatch.delenv("PBTNAS_FAULT")
    assert run_cli(capsys, "resume", run_dir, "--quiet")[0] == 0
    assert fitness_trace(run_dir) == fitness_trace(runs / "full")
    assert summary_without_time(run_dir) == summary_without_time(runs / "full")


@pytest.mark.parametrize("fault", ["write:config:eacces", "write:manifest:enospc:1"])
def test_a_write_refused_at_the_start_leaves_no_run_directory(tmp_path, capsys, monkeypatch, fault):
    monkeypatch.setenv("PBTNAS_FAULT", fault)
    line = one_error(capsys, "run", "simulated", *QUICK, "--out", tmp_path / "r")
    assert "start the run again" in line
    assert not (tmp_path / "r").exists()


def test_a_write_refused_on_resume(stopped, capsys, monkeypatch, runs):
    monkeypatch.setenv("PBTNAS_FAULT", "write:manifest:enospc")
    line = one_error(capsys, "resume", stopped, "--quiet")
    assert f"cannot write {stopped / 'population.json'}: the disk is full (ENOSPC); free space and continue with: pbtnas resume {stopped}" in line
    monkeypatch.delenv("PBTNAS_FAULT")
    assert run_cli(capsys, "resume", stopped, "--quiet")[0] == 0
    assert summary_without_time(stopped) == summary_without_time(runs / "full")


# -- errors only a worker sees --------------------------------------------------------------------
def test_an_option_that_fails_only_in_training_is_one_line_with_the_traceback_journaled(tmp_path, capsys):
    run_dir = tmp_path / "r"
    task = f"{Path(__file__).parent / 'custom_tasks.py'}:FailsInTraining"
    line = one_error(capsys, "run", task, "--population", "4", "--backend", "inprocess", "--quiet", "--set", "loggers=none", "--out", run_dir)
    assert "every member failed step 0; first error: ValueError: Invalid learning rate: -1.0" in line
    failed = list(RunStore(run_dir).iter_events("member_failed"))
    assert len(failed) == 4 and all("Traceback (most recent call last)" in e["reason"] for e in failed)


# -- best/member.pt -------------------------------------------------------------------------------
def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_the_best_network_is_recorded_with_a_checksum(stopped):
    manifest = RunStore(stopped).read_manifest()
    record = manifest["checkpoints"]["best/member.pt"]
    assert record["uid"] == manifest["best"]["uid"] and record["bytes"] == (stopped / "best" / "member.pt").stat().st_size


def test_a_damaged_best_network_stops_resume_and_export_and_skip_damaged_replaces_it(stopped, tmp_path, capsys, runs):
    best = stopped / "best" / "member.pt"
    _flip_a_byte(best)
    before = snapshot(stopped)
    line = one_error(capsys, "resume", stopped, "--quiet")
    assert str(best) in line and "checksum mismatch" in line and "--skip-damaged" in line
    assert snapshot(stopped) == before
    for which in ("final", "best"):
        assert str(best) in one_error(capsys, "export", stopped, "--out", tmp_path / "x", "--which", which)
    assert not (tmp_path / "x").exists()
    assert run_cli(capsys, "resume", stopped, "--quiet", "--skip-damaged")[0] == 0
    skipped = list(RunStore(stopped).iter_events("checkpoint_skipped"))
    assert [e["file"] for e in skipped] == ["best/member.pt"] and "best surviving member" in skipped[0]["restarts"]
    # here the best-ever member was still in the population: nothing is lost
    assert summary_without_time(stopped) == summary_without_time(runs / "full")


def test_a_best_network_saved_after_the_last_commit_is_not_damage(tmp_path, capsys, monkeypatch, runs):
    """A step that updated the best network but was never committed (here: its commit hit a full
    disk) leaves best/member.pt newer than the manifest's record: a copy of the checkpoint that
    step wrote, which the resume redoes. That is not damage."""
    from pbtnas.rundir.store import file_sha256

    run_dir = tmp_path / "r"
    monkeypatch.setenv("PBTNAS_FAULT", "write:manifest:enospc:3")
    one_error(capsys, "run", "simulated", *QUICK, "--out", run_dir)
    monkeypatch.delenv("PBTNAS_FAULT")
    record = RunStore(run_dir).read_manifest()["checkpoints"]["best/member.pt"]
    assert file_sha256(run_dir / "best" / "member.pt") != record["sha256"]  # the case at hand
    assert run_cli(capsys, "resume", run_dir, "--quiet")[0] == 0
    assert list(RunStore(run_dir).iter_events("checkpoint_skipped")) == []
    assert summary_without_time(run_dir) == summary_without_time(runs / "full")
