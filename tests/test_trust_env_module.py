"""Code a task option names is trusted like the task itself (issue 20.1): the RL task declares
``code_options = {"env": env_module}``, so the module ``my_envs`` of ``task.env=my_envs:Name-v0``
is recorded at start (path and SHA-256, in ``run_info.json`` and ``export.json``), and ``export``,
``soup``, ``resume`` and ``pbtnas.load`` import it only while it is that file, unchanged, outside
the folder, unless ``--trust-code``. dm_control tasks and registered gymnasium names need nothing.

The environment module below writes a marker file whenever it is imported. The run is made once
by the ``pbtnas`` command in its start folder, killed after step 0 (``PBTNAS_FAULT``); each test
works on a copy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import yaml

from pbtnas.cli import main

HERE = Path(__file__).parent
PBTNAS = str(Path(sys.executable).parent / "pbtnas")
MARKER = "ENV_IMPORTED"
ENV_SOURCE = (
    "from pathlib import Path as _Path\n\n"
    f"with open(_Path(__file__).with_name({MARKER!r}), 'a') as _marker:\n"
    "    _marker.write(__file__ + '\\n')\n\n" + (HERE / "custom_envs.py").read_text()
)
EVIL_SOURCE = "from pathlib import Path\n\nPath(__file__).with_name('EVIL_RAN').write_text('ran')\n"
TINY = [
    "--population",
    "4",
    "--steps",
    "2",
    "--backend",
    "inprocess",
    "--quiet",
    *("--set", "task.frames_per_step=60", "--set", "task.seed_frames=30", "--set", "task.episode_frames=30"),
    *("--set", "task.hidden_dim=16", "--set", "task.batch_size=8", "--set", "task.eval_episodes=1"),
    *("--set", "task.final_eval_episodes=1", "--set", "loggers=none", "--set", "task.env=my_envs:PointMass-v0"),
]
#: modules the tests import (or must never import), forgotten around each test
MODULES = ("my_envs", "evil")


def _pbtnas(args: list, cwd: Path, fault: str = "", command: tuple = (PBTNAS,)) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PBTNAS_FAULT")}
    if fault:
        env["PBTNAS_FAULT"] = fault
    return subprocess.run([*command, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def made_run(tmp_path_factory):
    """A tiny RL run on ``my_envs:PointMass-v0`` from its start folder, killed after step 0."""
    root = tmp_path_factory.mktemp("envtrust")
    (root / "start").mkdir()
    (root / "start" / "my_envs.py").write_text(ENV_SOURCE)
    proc = _pbtnas(["run", "rl-cheetah", *TINY, "--out", root / "run"], root / "start", fault="after-step:0:kill")
    assert proc.returncode == -9, proc.stderr[-3000:]
    return root


def _forget() -> None:
    from pbtnas.tasks import _CACHE

    _CACHE.clear()  # a built task keeps its environment
    for name in [n for n in sys.modules if n.split(".")[0] in MODULES]:
        del sys.modules[name]


@pytest.fixture
def run(made_run, tmp_path, monkeypatch):
    """A copy of the killed run and of its start folder (recorded as such), whose environment
    module has not been imported since; ``sys.path`` and the working directory are restored."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    start = tmp_path / "start"
    shutil.copytree(made_run / "start", start)
    (start / MARKER).unlink()
    shutil.copytree(made_run / "run", tmp_path / "run")
    info = json.loads((tmp_path / "run" / "run_info.json").read_text())
    info["start_dir"] = str(start)
    info["task"]["code_options"]["env"]["file"] = str((start / "my_envs.py").resolve())
    (tmp_path / "run" / "run_info.json").write_text(json.dumps(info))
    _forget()
    yield tmp_path / "run"
    _forget()


def _cli(capsys, *args) -> tuple[int, str]:
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def _one_error(capsys, *args) -> str:
    code, err = _cli(capsys, *args)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, err)
    return lines[0]


def _marker(run: Path) -> Path:
    return run.parent / "start" / MARKER


def _change_env_module(run: Path) -> Path:
    module_file = run.parent / "start" / "my_envs.py"
    module_file.write_text(module_file.read_text() + "\n# changed\n")
    return module_file


def _name_env(run: Path, env: str) -> None:
    """An edited config.yaml: ``task.env`` names ``env``."""
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["task"]["env"] = env
    (run / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


# -- which modules an env name imports --------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "module"),
    [
        ("my_envs:PointMass-v0", "my_envs"),
        ("gym:my_envs:PointMass-v0", "my_envs"),
        ("gym:pkg.envs:PointMass", "pkg.envs"),  # check_env_name imports it before it refuses the name
        ("cheetah-run", None),
        ("dmc:cheetah-run", None),
        ("Pendulum-v1", None),
        ("gym:Pendulum-v1", None),
        ("gym:ns/Name-v0", None),
        ("evil:cheetah-run", None),  # refused by parse_env_name before anything is imported
        (None, None),
    ],
)
def test_env_module_reads_the_module_an_env_name_imports(env, module):
    from pbtnas.tasks.rl.envs import env_module
    from pbtnas.tasks.rl.task import RLTask

    assert env_module(env) == module
    assert RLTask.code_options["env"] is env_module


def test_declared_code_options_read_a_tuple_a_dict_and_option_defaults():
    from dataclasses import dataclass

    from pbtnas.rundir.runinfo import code_option_modules

    @dataclass
    class Options:
        plugin: str = "pkg.plugins:Thing"
        other: str = "x"

    from pbtnas.tasks.base import Task

    class Tuple(Task):
        code_options = ("plugin", "other")

    class Dict(Task):
        code_options = {"other": lambda value: f"mod_{value}"}

    class Nothing(Task):
        pass

    for task_class in (Tuple, Dict, Nothing):
        task_class.Options = Options

    assert code_option_modules(Tuple, {}) == {"plugin": "pkg.plugins"}  # the Options default
    assert code_option_modules(Tuple, {"plugin": "mine:Thing", "other": "a:b"}) == {"plugin": "mine", "other": "a"}
    assert code_option_modules(Dict, {"other": "y"}) == {"other": "mod_y"}
    assert code_option_modules(Nothing, {"env": "evil:Evil-v0"}) == {}  # nothing declared, nothing read


def test_dm_control_and_registered_gymnasium_names_need_nothing(tmp_path):
    """Nothing recorded, nothing asked, for a built-in env or an installed module's."""
    from pbtnas.rundir.runinfo import code_options_record
    from pbtnas.tasks.rl.task import RLTask
    from pbtnas.tasks.trust import check_task_code

    for env in ("cheetah-run", "dmc:cheetah-run", "Pendulum-v1", "gym:Pendulum-v1", "gymnasium.envs.classic_control:Pendulum-v1"):
        check_task_code({"name": "rl", "env": env}, tmp_path, None)
        check_task_code({"name": "rl", "env": env}, tmp_path, {"name": "rl", "class": "RLTask"}, what="export folder")
        assert code_options_record(RLTask, {"env": env}) == {}
    check_task_code({"name": "rl"}, tmp_path, None)  # the default env


# -- a recorded env module: imported while unchanged, refused once changed --------------------------


def test_the_run_records_its_env_module_and_resume_and_export_use_it_unchanged(run, tmp_path, capsys):
    from pbtnas.rundir.store import file_sha256

    module_file = (run.parent / "start" / "my_envs.py").resolve()
    record = json.loads((run / "run_info.json").read_text())["task"]["code_options"]
    assert record == {"env": {"module": "my_envs", "file": str(module_file), "sha256": file_sha256(module_file)}}
    code, err = _cli(capsys, "resume", run, "--quiet")
    assert code == 0, err
    assert _marker(run).exists() and json.loads((run / "summary.json").read_text())["steps_done"] == 2
    code, err = _cli(capsys, "export", run, "--out", tmp_path / "x")
    assert code == 0, err
    assert json.loads((tmp_path / "x" / "export.json").read_text())["task_code"] == {"code_options": record}


def test_a_changed_env_module_is_refused_unless_trusted(run, tmp_path, capsys):
    import torch

    import pbtnas

    assert _cli(capsys, "export", run, "--out", tmp_path / "x")[0] == 0  # made while unchanged
    _forget()
    _marker(run).unlink()
    module_file = _change_env_module(run)
    for verb in (["export", run, "--out", tmp_path / "y"], ["resume", run, "--quiet"]):
        line = _one_error(capsys, *verb)
        assert "task.env" in line and "my_envs" in line and str(module_file) in line, line
        assert "changed since the run started" in line and "--trust-code" in line, line
    assert not _marker(run).exists() and "my_envs" not in sys.modules and not (tmp_path / "y").exists()
    sys.path.append(str(run.parent / "start"))  # pbtnas.load imports from sys.path, like any import
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scripted = pbtnas.load(str(tmp_path / "x"))
    assert isinstance(scripted, torch.jit.ScriptModule) and not _marker(run).exists()
    assert any(str(module_file) in str(w.message) and "task.env" in str(w.message) for w in caught)

    code, err = _cli(capsys, "resume", run, "--quiet", "--trust-code")  # finishes the run
    assert code == 0, err
    assert _marker(run).exists()
    _forget()
    _marker(run).unlink()
    line = _one_error(capsys, "soup", run)  # the record stays what it was at start
    assert "task.env" in line and str(module_file) in line and not _marker(run).exists()
    eager = pbtnas.load(str(tmp_path / "x"), trust_code=True)
    assert not isinstance(eager, torch.jit.ScriptModule) and _marker(run).exists()


# -- an env module the run did not record is never imported -----------------------------------------


@pytest.mark.parametrize("where", ["working directory", "recorded start folder", "run folder"])
def test_an_env_module_the_run_did_not_record_is_refused_without_import(run, tmp_path, capsys, monkeypatch, where):
    """The config edited to name ``evil:Evil-v0``, whose file lies beside where the command runs
    (first on ``sys.path`` under ``python -m pbtnas``), in the recorded start folder, or in the
    run folder itself (run from there)."""
    folder = {"working directory": tmp_path / "downloads", "recorded start folder": run.parent / "start", "run folder": run}[where]
    folder.mkdir(exist_ok=True)
    evil = folder / "evil.py"
    evil.write_text(EVIL_SOURCE)
    _name_env(run, "evil:Evil-v0")
    if where != "recorded start folder":
        monkeypatch.chdir(folder)
        monkeypatch.syspath_prepend(str(folder))
    for verb in (["export", run, "--out", tmp_path / "x"], ["resume", run, "--quiet"]):
        line = _one_error(capsys, *verb)
        assert "task.env" in line and "evil" in line and str(evil) in line and "--trust-code" in line, line
        if where == "run folder":
            assert "inside the run folder" in line
        else:  # the run recorded my_envs for task.env
            assert "not the file the run recorded at start" in line and "my_envs.py" in line
    info = json.loads((run / "run_info.json").read_text())
    del info["task"]["code_options"]  # forged, or a run made before env modules were recorded
    (run / "run_info.json").write_text(json.dumps(info))
    line = _one_error(capsys, "export", run, "--out", tmp_path / "x")
    assert str(evil) in line and ("inside the run folder" if where == "run folder" else "not a module the run recorded") in line
    assert not (folder / "EVIL_RAN").exists() and "evil" not in sys.modules and not (tmp_path / "x").exists()


def test_python_m_pbtnas_never_imports_an_env_module_from_the_working_directory(run, tmp_path):
    """End to end, in a fresh interpreter: ``python -m pbtnas`` puts the working directory first
    on ``sys.path``, where a downloaded ``evil.py`` may lie beside the run; ``gym:`` form."""
    folder = tmp_path / "downloads"
    folder.mkdir()
    (folder / "evil.py").write_text(EVIL_SOURCE)
    _name_env(run, "gym:evil:Evil-v0")
    proc = _pbtnas(["export", run, "--out", tmp_path / "x"], folder, command=(sys.executable, "-m", "pbtnas"))
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert str(folder / "evil.py") in lines[0] and "task.env" in lines[0] and "--trust-code" in lines[0]
    assert not (folder / "EVIL_RAN").exists() and not (tmp_path / "x").exists()
