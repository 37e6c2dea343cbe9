"""The folder a run starts from and the task file's folder are importable in the driver and in
every worker (issue 21): a user's gymnasium environment ``my_envs.py`` beside where the run starts
(``task.env=my_envs:Name-v0``) and the modules a task file imports from beside it, with the
``pbtnas`` command (whose ``sys.path`` does not hold the working directory), on the local backend
and on Ray, and in a resume started from another folder (the start folder is recorded in
``run_info.json``). The runs are killed after their first step with ``PBTNAS_FAULT``."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from run_helpers import RL_TINY_SETS

from pbtnas.tasks import add_import_roots, import_roots, recorded_start_dir, start_dir_for

HERE = Path(__file__).parent
#: the installed command: unlike ``python -m pbtnas`` its sys.path[0] is its own folder, not the
#: working directory, which is where a user's module was not found
PBTNAS = str(Path(sys.executable).parent / "pbtnas")
RL_TINY = [
    "--population",
    "4",
    "--steps",
    "2",
    "--quiet",
    *RL_TINY_SETS,
    "--set",
    "loggers=none",
]


def pbtnas_cli(args: list[str], cwd: Path, fault: str = "") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PBTNAS_FAULT")}
    if fault:
        env["PBTNAS_FAULT"] = fault
    return subprocess.run([PBTNAS, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def run_killed_then_resumed(args: list[str], start: Path, elsewhere: Path, out: Path, resume_args: tuple = ()) -> dict:
    """Start ``args`` in ``start``, killed after step 0; resume it from ``elsewhere``; the summary."""
    first = pbtnas_cli(["run", *args, "--out", str(out)], start, fault="after-step:0:kill")
    assert first.returncode == -9, first.stderr[-3000:]
    assert not (out / "summary.json").exists()
    info = json.loads((out / "run_info.json").read_text())
    assert info["start_dir"] == str(start)
    second = pbtnas_cli(["resume", str(out), "--quiet", *resume_args], elsewhere)
    assert second.returncode == 0, second.stderr[-3000:]
    return json.loads((out / "summary.json").read_text())


@pytest.fixture()
def folders(tmp_path):
    start, elsewhere = tmp_path / "start", tmp_path / "elsewhere"
    start.mkdir()
    elsewhere.mkdir()
    return start, elsewhere


def test_import_roots_name_the_task_files_folder_and_the_start_folder(tmp_path):
    task_file = tmp_path / "tasks" / "mine.py"
    assert import_roots({"name": f"{task_file}:Mine"}, str(tmp_path)) == [str(task_file.parent), str(tmp_path)]
    assert import_roots({"name": "rl", "env": "my_envs:PointMass-v0"}, str(tmp_path)) == [str(tmp_path)]
    assert import_roots({"name": "simulated"}) == []


def test_the_recorded_start_folder_is_used_unless_it_lies_inside_the_run(tmp_path, monkeypatch):
    run, start = tmp_path / "run", tmp_path / "start"
    run.mkdir()
    start.mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    assert recorded_start_dir(run) is None  # a new run: the working directory
    assert start_dir_for(run) == str(tmp_path) and str(tmp_path) in sys.path

    def record(start_dir):
        (run / "run_info.json").write_text(json.dumps({"version": 1, "start_dir": start_dir}))

    record(str(start))
    assert recorded_start_dir(run) == str(start)
    assert start_dir_for(run) == str(start) and sys.path[-1] == str(start)
    # a run directory is data: a start folder inside it (code it brings along) is not imported from
    record(str(run / "code"))
    (run / "code").mkdir()
    assert recorded_start_dir(run) is None
    record(str(run))
    assert recorded_start_dir(run) is None
    record(str(tmp_path / "gone"))
    assert recorded_start_dir(run) is None
    add_import_roots([str(start), str(tmp_path / "gone")])  # once, and only folders that exist
    assert sys.path.count(str(start)) == 1 and str(tmp_path / "gone") not in sys.path


def test_a_task_module_in_the_start_folder_is_found_by_the_pbtnas_command_and_by_a_resume_from_elsewhere(folders, tmp_path):
    """``my_tasks:Good`` lies in the start folder (was: ModuleNotFoundError without PYTHONPATH=.)."""
    start, elsewhere = folders
    shutil.copy(HERE / "custom_tasks.py", start / "my_tasks.py")
    args = ["my_tasks:Good", "--population", "4", "--steps", "2", "--backend", "inprocess", "--quiet", "--set", "loggers=none"]
    summary = run_killed_then_resumed(args, start, elsewhere, tmp_path / "run")
    assert summary["steps_done"] == 2


@pytest.mark.slow
def test_a_task_file_importing_a_module_beside_it_runs_from_another_folder_and_resumes(folders, tmp_path):
    """``../tasks/my_task.py:Sibling`` imports ``helpers`` from its own folder; the run starts
    in one folder on local workers and is resumed from another."""
    start, elsewhere = folders
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    shutil.copy(HERE / "custom_tasks.py", tasks / "helpers.py")
    (tasks / "my_task.py").write_text("from helpers import Good\n\n\nclass Sibling(Good):\n    pass\n")
    args = ["../tasks/my_task.py:Sibling", "--population", "4", "--steps", "2", "--workers", "2", "--quiet", "--set", "loggers=none"]
    summary = run_killed_then_resumed(args, start, elsewhere, tmp_path / "run")
    assert summary["steps_done"] == 2


def _own_env_module(start: Path) -> None:
    shutil.copy(HERE / "custom_envs.py", start / "my_envs.py")  # not on any sys.path of the test


@pytest.mark.slow
def test_a_users_env_module_in_the_start_folder_on_local_workers_and_in_a_resume_and_export_from_elsewhere(folders, tmp_path):
    start, elsewhere = folders
    _own_env_module(start)
    args = ["rl-cheetah", *RL_TINY, "--backend", "local", "--workers", "2", "--set", "task.env=my_envs:PointMass-v0"]
    summary = run_killed_then_resumed(args, start, elsewhere, tmp_path / "run")
    assert summary["steps_done"] == 2
    exported = pbtnas_cli(["export", str(tmp_path / "run"), "--out", str(tmp_path / "actor")], elsewhere)
    assert exported.returncode == 0, exported.stderr[-3000:]


@pytest.mark.slow
def test_a_users_env_module_in_the_start_folder_on_ray(folders, tmp_path):
    pytest.importorskip("ray")
    start, elsewhere = folders
    _own_env_module(start)
    args = ["rl-cheetah", *RL_TINY, "--backend", "ray", "--set", "cpus_per_member=0.5", "--set", "task.env=my_envs:PointMass-v0"]
    summary = run_killed_then_resumed(args, start, elsewhere, tmp_path / "run")
    assert summary["steps_done"] == 2
