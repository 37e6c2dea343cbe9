"""A run directory is data, not code (issue 20.1): ``status`` and ``report`` import no task code;
``export``, ``soup``, ``resume`` and ``pbtnas.load`` import a task file only when it is the file
the run recorded at start (same SHA-256) and lies outside the folder, unless ``--trust-code``.

The task file below writes a marker file whenever it is imported: the marker says whether a
command ran it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import yaml

from pbtnas.cli import main

TASK_SOURCE = textwrap.dedent(
    '''
    """A tiny regression task that leaves a trace whenever it is imported."""
    from pathlib import Path

    import torch
    import torch.nn.functional as F
    from torch import nn

    import pbtnas
    from pbtnas import Gene, SearchSpace

    with open(Path(__file__).with_name("IMPORTED"), "a") as marker:
        marker.write(__file__ + "\\n")

    X = torch.linspace(-1, 1, 32).unsqueeze(1)
    Y = torch.sin(3 * X)


    class Net(nn.Module):
        def __init__(self, genome):
            super().__init__()
            self.inp = nn.Linear(1, 8)
            self.block = nn.Linear(8, 8) if genome["block"] == "linear" else nn.Identity()
            self.head = nn.Linear(8, 1)

        def forward(self, x):
            return self.head(torch.tanh(self.block(torch.tanh(self.inp(x)))))


    class Marked(pbtnas.TorchTask):
        space = SearchSpace([Gene("block", ["linear", "skip"]), Gene("act", ["a", "b"], owns_weights=False)])
        fitness_name = "neg_mse"

        def build(self, genome):
            return Net(genome)

        def train(self, member):
            loss = F.mse_loss(member.model(X), Y)
            member.optimizer.zero_grad()
            loss.backward()
            member.optimizer.step()
            return {"loss": loss}

        def evaluate(self, member):
            return -F.mse_loss(member.model(X), Y).item()

        def example_input(self, batch):
            return X[:batch]
    '''
)
QUICK = ["--population", "4", "--steps", "1", "--backend", "inprocess", "--seed", "3", "--quiet", "--set", "loggers=none"]


def _forget_imported_tasks() -> None:
    """Make the next build import task files again (the loader caches modules and tasks)."""
    from pbtnas.tasks import _CACHE

    _CACHE.clear()
    for name in [n for n in sys.modules if n.startswith("pbtnas_user_")]:
        del sys.modules[name]


@pytest.fixture
def fresh_imports():
    _forget_imported_tasks()
    yield
    _forget_imported_tasks()


@pytest.fixture(scope="module")
def made_run(tmp_path_factory):
    """A finished run of the marked file task (made once; tests copy it)."""
    root = tmp_path_factory.mktemp("trust")
    code = root / "code"
    code.mkdir()
    (code / "marked.py").write_text(TASK_SOURCE)
    _forget_imported_tasks()
    assert main(["run", f"{code / 'marked.py'}:Marked", *QUICK, "--out", str(root / "run")]) == 0
    _forget_imported_tasks()
    return root


@pytest.fixture
def run(made_run, tmp_path, fresh_imports):
    """A copy of the finished run whose task file (outside it) has not been imported since."""
    code = tmp_path / "code"
    shutil.copytree(made_run / "code", code)
    (code / "IMPORTED").unlink()
    shutil.copytree(made_run / "run", tmp_path / "run")
    _rename_task(tmp_path / "run", code / "marked.py")
    return tmp_path / "run"


def _rename_task(run_dir: Path, task_file: Path, record: bool = True) -> None:
    """Point the run's config (and, with ``record``, its run_info.json) at ``task_file``, as an
    edited config.yaml would; the recorded SHA-256 stays what it was at start."""
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    config["task"]["name"] = f"{task_file}:Marked"
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    info = json.loads((run_dir / "run_info.json").read_text())
    if record:
        info["task"]["file"] = str(task_file)
    (run_dir / "run_info.json").write_text(json.dumps(info))


def _marker(run_dir: Path) -> Path:
    return run_dir.parent / "code" / "IMPORTED"


def _cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_error(capsys, *args) -> str:
    code, _, err = _cli(capsys, *args)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, err)
    return lines[0]


# -- status and report import no task code --------------------------------------------------------


def test_the_run_records_its_task_as_data_at_start(run):
    info = json.loads((run / "run_info.json").read_text())
    assert info["task"]["class"] == "Marked" and len(info["task"]["sha256"]) == 64
    assert [g["gene"] for g in info["space"]["genes"]] == ["block", "act"]
    assert info["fitness_name"] == "neg_mse" and "device" in info["option_defaults"]


def test_status_imports_neither_the_task_nor_torch(run):
    """In a fresh interpreter, so that nothing imported before counts."""
    probe = (
        "import sys\nfrom pbtnas.cli import main\ncode = main(['status', sys.argv[1]])\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', code)\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe, str(run)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("NO-TORCH 0"), proc.stdout
    assert "block=" in proc.stdout and "act=" in proc.stdout  # genomes decoded from the manifest
    assert not _marker(run).exists()


def test_status_and_report_never_import_a_file_the_config_names(run, tmp_path, capsys):
    evil = tmp_path / "elsewhere" / "evil.py"
    evil.parent.mkdir()
    evil.write_text("open(__file__ + '.RAN', 'w').write('ran')\n")
    for target in (run.parent / "code" / "marked.py", evil):
        _rename_task(run, target)
        code, out, _ = _cli(capsys, "status", run)
        assert code == 0 and "Marked" in out
        code, out, err = _cli(capsys, "report", run)
        assert code == 0, err
    page = (run / "report" / "index.html").read_text()
    assert "<td>act</td>" in page and "weightless choice" in page  # the recorded space, not guesses
    assert not _marker(run).exists() and not Path(f"{evil}.RAN").exists()


def test_a_run_without_run_info_is_shown_from_its_raw_data(run, capsys):
    (run / "run_info.json").unlink()
    code, out, _ = _cli(capsys, "status", run)
    assert code == 0 and "block=" in out
    code, out, _ = _cli(capsys, "report", run)
    assert code == 0 and "gene options are those seen in the run" in out
    assert not _marker(run).exists()


# -- export, soup, resume and pbtnas.load import only the recorded file ---------------------------


def test_export_imports_the_recorded_unchanged_file(run, tmp_path, capsys):
    code, _, err = _cli(capsys, "export", run, "--out", tmp_path / "x")
    assert code == 0, err
    assert _marker(run).exists()


def test_export_refuses_a_task_file_changed_since_the_start(run, tmp_path, capsys):
    task_file = run.parent / "code" / "marked.py"
    task_file.write_text(task_file.read_text() + "\n# changed\n")
    line = _one_error(capsys, "export", run, "--out", tmp_path / "x")
    assert str(task_file) in line and "changed since the run started" in line and "--trust-code" in line
    assert not _marker(run).exists() and not (tmp_path / "x").exists()
    code, _, err = _cli(capsys, "export", run, "--out", tmp_path / "x", "--trust-code")
    assert code == 0, err
    assert _marker(run).exists()


def test_export_refuses_a_task_file_inside_the_run_folder(run, tmp_path, capsys):
    """Even with run_info.json rewritten to record the planted file and its hash."""
    from pbtnas.rundir.store import file_sha256

    planted = run / "marked.py"
    shutil.copyfile(run.parent / "code" / "marked.py", planted)
    _rename_task(run, planted)
    info = json.loads((run / "run_info.json").read_text())
    info["task"]["sha256"] = file_sha256(planted)
    (run / "run_info.json").write_text(json.dumps(info))
    line = _one_error(capsys, "export", run, "--out", tmp_path / "x")
    assert str(planted) in line and "inside the run folder" in line
    assert not (run / "IMPORTED").exists() and not (tmp_path / "x").exists()


def test_export_refuses_another_file_than_the_recorded_one(run, tmp_path, capsys):
    other = tmp_path / "other" / "marked.py"
    other.parent.mkdir()
    shutil.copyfile(run.parent / "code" / "marked.py", other)
    _rename_task(run, other, record=False)
    line = _one_error(capsys, "export", run, "--out", tmp_path / "x")
    assert str(other) in line and "not the file the run recorded" in line
    assert not (other.parent / "IMPORTED").exists()


def test_a_run_without_a_recorded_hash_needs_trust(run, tmp_path, capsys):
    (run / "run_info.json").unlink()  # a run made by an older pbtnas
    line = _one_error(capsys, "export", run, "--out", tmp_path / "x")
    assert "was not recorded" in line and not _marker(run).exists()


def test_soup_refuses_a_changed_task_file(run, capsys):
    task_file = run.parent / "code" / "marked.py"
    task_file.write_text(task_file.read_text() + "\n# changed\n")
    line = _one_error(capsys, "soup", run)
    assert str(task_file) in line and not _marker(run).exists()


def test_resume_refuses_a_changed_task_file_unless_trusted(run, capsys):
    import pbtnas
    from pbtnas.errors import ConfigError

    task_file = run.parent / "code" / "marked.py"
    task_file.write_text(task_file.read_text() + "\n# changed\n")
    line = _one_error(capsys, "resume", run, "--quiet")
    assert str(task_file) in line and "changed since the run started" in line
    with pytest.raises(ConfigError, match="changed since the run started"):
        pbtnas.resume(str(run))  # the library applies the same policy
    assert not _marker(run).exists()
    code, _, err = _cli(capsys, "resume", run, "--quiet", "--trust-code")
    assert code == 0, err
    assert _marker(run).exists()


def test_load_uses_torchscript_for_a_file_it_may_not_import(run, tmp_path, capsys, fresh_imports):
    import torch

    import pbtnas

    out = tmp_path / "x"
    assert _cli(capsys, "export", run, "--out", out)[0] == 0
    assert json.loads((out / "export.json").read_text())["task_code"]["sha256"]
    _forget_imported_tasks()
    _marker(run).unlink()
    eager = pbtnas.load(str(out))  # the recorded, unchanged file outside the folder: imported
    assert not isinstance(eager, torch.jit.ScriptModule) and _marker(run).exists()

    _forget_imported_tasks()
    _marker(run).unlink()
    task_file = run.parent / "code" / "marked.py"
    task_file.write_text(task_file.read_text() + "\n# changed\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scripted = pbtnas.load(str(out))
    assert isinstance(scripted, torch.jit.ScriptModule) and not _marker(run).exists()
    assert any(str(task_file) in str(w.message) and "trust_code=True" in str(w.message) for w in caught)
    x = torch.linspace(-1, 1, 4).unsqueeze(1)
    assert torch.allclose(scripted(x), eager(x), atol=1e-6)

    trusted = pbtnas.load(str(out), trust_code=True)
    assert not isinstance(trusted, torch.jit.ScriptModule) and _marker(run).exists()


def test_load_never_imports_a_task_file_shipped_inside_the_export(run, tmp_path, capsys, fresh_imports):
    import torch

    import pbtnas
    from pbtnas.rundir.store import file_sha256

    out = tmp_path / "x"
    assert _cli(capsys, "export", run, "--out", out)[0] == 0
    _forget_imported_tasks()
    planted = out / "marked.py"
    shutil.copyfile(run.parent / "code" / "marked.py", planted)
    meta = json.loads((out / "export.json").read_text())
    meta["task"]["name"] = f"{planted}:Marked"
    meta["task_code"] = {"file": str(planted), "sha256": file_sha256(planted)}
    (out / "export.json").write_text(json.dumps(meta))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = pbtnas.load(str(out))
    assert isinstance(module, torch.jit.ScriptModule) and not (out / "IMPORTED").exists()


# -- built-in tasks need no trust -----------------------------------------------------------------


def test_built_in_tasks_need_no_trust(tmp_path, capsys):
    out = tmp_path / "sim"
    argv = ["run", "simulated", *QUICK, "--set", "task.step_seconds=0", "--out", out]
    assert _cli(capsys, *argv)[0] == 0
    info = json.loads((out / "run_info.json").read_text())
    assert info["task"] == {"name": "simulated", "class": "SimulatedTask"}
    code, status, _ = _cli(capsys, "status", out)
    assert code == 0 and "simulated" in status
    (out / "run_info.json").unlink()  # an older run: still nothing to trust
    from pbtnas.analysis.soup import make_soups
    from pbtnas.tasks.trust import check_run_task

    check_run_task(out, yaml.safe_load((out / "config.yaml").read_text())["task"])
    make_soups(out)


@pytest.mark.parametrize("env", ["evil_envs:Maze-v0", "gym:evil_envs:Maze-v0"])
def test_the_report_video_never_imports_an_environment_module_a_run_names(tmp_path, monkeypatch, env):
    from types import SimpleNamespace

    from pbtnas.analysis.report.video import episode_video

    (tmp_path / "evil_envs.py").write_text("open(__file__ + '.RAN', 'w').write('ran')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from pbtnas.rundir.report_hints import ReportHints

    hints = ReportHints(episode_video=True)
    history = SimpleNamespace(config={"task": {"name": "rl", "env": env}}, task_name="rl", run_dir=tmp_path, hints=hints)
    video, caption = episode_video(history, tmp_path / "episode.gif")  # type: ignore[arg-type]
    assert video is None and "does not import" in caption
    assert "evil_envs" not in sys.modules and not (tmp_path / "evil_envs.py.RAN").exists()


# -- a task named as a module (package.module:Class) is checked like a task file -----------------


@pytest.fixture
def module_imports(monkeypatch, fresh_imports):
    """Forget the test modules below before and after, and restore ``sys.path`` afterwards (a run
    adds its start folder to it)."""
    names = ("evil_mod", "evilpkg", "mine_mod")

    def forget() -> None:
        for name in [n for n in sys.modules if n.split(".")[0] in names]:
            del sys.modules[name]

    monkeypatch.setattr(sys, "path", list(sys.path))
    forget()
    yield
    forget()


def _name_task(run_dir: Path, name: str, record: dict | None = None) -> None:
    """Set the run's ``task.name`` to ``name`` (an edited config.yaml); ``record`` replaces the
    task record of its run_info.json."""
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    config["task"]["name"] = name
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    if record is not None:
        info = json.loads((run_dir / "run_info.json").read_text())
        info["task"] = {"name": name, "class": "Marked", **record}
        (run_dir / "run_info.json").write_text(json.dumps(info))


def test_locating_a_module_runs_none_of_its_code(tmp_path, module_imports):
    from pbtnas.rundir.locate import locate_module

    package = tmp_path / "evilpkg"
    package.mkdir()
    (package / "__init__.py").write_text("open(__file__ + '.RAN', 'w').write('ran')\n")
    (package / "sub.py").write_text("open(__file__ + '.RAN', 'w').write('ran')\n")
    found = locate_module("evilpkg.sub", [str(tmp_path)])
    assert found.file == package / "sub.py" and found.parents == [package / "__init__.py"]
    assert "evilpkg" not in sys.modules and not list(package.glob("*.RAN"))
    assert locate_module("evilpkg.sub").file is None  # not on sys.path without the root


def test_export_refuses_a_task_module_inside_the_run_folder(run, tmp_path, capsys, monkeypatch, module_imports):
    """Run from inside the run folder, as ``python -m pbtnas`` (the working directory first on
    ``sys.path``), even with run_info.json forged to record the planted module and its hash."""
    from pbtnas.rundir.store import file_sha256

    planted = run / "evil_mod.py"
    planted.write_text(TASK_SOURCE)
    _name_task(run, "evil_mod:Marked", {"module": "evil_mod", "file": str(planted.resolve()), "sha256": file_sha256(planted)})
    monkeypatch.chdir(run)
    monkeypatch.syspath_prepend(str(run))
    line = _one_error(capsys, "export", run, "--out", tmp_path / "x")
    assert str(planted) in line and "inside the run folder" in line and "--trust-code" in line
    assert not (run / "IMPORTED").exists() and not (tmp_path / "x").exists() and "evil_mod" not in sys.modules


def test_export_refuses_a_module_in_a_package_inside_the_run_folder(run, tmp_path, capsys, monkeypatch, module_imports):
    package = run / "evilpkg"
    package.mkdir()
    (package / "__init__.py").write_text("open(__file__ + '.RAN', 'w').write('ran')\n")
    (package / "sub.py").write_text(TASK_SOURCE)
    _name_task(run, "evilpkg.sub:Marked")
    monkeypatch.chdir(run)
    monkeypatch.syspath_prepend(str(run))
    line = _one_error(capsys, "export", run, "--out", tmp_path / "x")
    assert str(package / "__init__.py") in line and "inside the run folder" in line and "--trust-code" in line
    assert not (package / "__init__.py.RAN").exists() and not (package / "IMPORTED").exists()


@pytest.mark.parametrize("where", ["working directory", "recorded start folder"])
def test_export_refuses_a_task_module_the_run_did_not_record(run, tmp_path, capsys, monkeypatch, module_imports, where):
    """A module beside where the command runs (first on ``sys.path`` under ``python -m pbtnas``)
    or in the run's recorded start folder: the run recorded a different task, so it is not run."""
    folder = tmp_path / "here"
    folder.mkdir()
    planted = folder / "evil_mod.py"
    planted.write_text(TASK_SOURCE)
    _name_task(run, "evil_mod:Marked")
    if where == "working directory":
        monkeypatch.chdir(folder)
        monkeypatch.syspath_prepend(str(folder))
    else:
        info = json.loads((run / "run_info.json").read_text())
        info["start_dir"] = str(folder)
        (run / "run_info.json").write_text(json.dumps(info))
    line = _one_error(capsys, "export", run, "--out", tmp_path / "x")
    assert str(planted) in line and "not the file the run recorded" in line and "--trust-code" in line
    assert not (folder / "IMPORTED").exists() and not (tmp_path / "x").exists() and "evil_mod" not in sys.modules
    (run / "run_info.json").unlink()  # a run made before modules were recorded: no hash to check
    line = _one_error(capsys, "export", run, "--out", tmp_path / "x")
    if where == "working directory":
        assert str(planted) in line and "was not recorded" in line
    else:  # nor a start folder: the module is not looked for there at all
        assert "cannot be imported" in line
    assert not (folder / "IMPORTED").exists() and "evil_mod" not in sys.modules


def test_a_recorded_task_module_is_imported_while_unchanged(tmp_path, capsys, monkeypatch, module_imports):
    """A run of the user's own module, started in its folder: export from elsewhere imports it
    (found in the recorded start folder) while it is unchanged; changed, export refuses and
    ``pbtnas.load`` falls back to TorchScript, unless trusted."""
    import torch

    import pbtnas

    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    module_file = project / "mine_mod.py"
    module_file.write_text(TASK_SOURCE)
    marker = project / "IMPORTED"
    monkeypatch.chdir(project)
    assert _cli(capsys, "run", "mine_mod:Marked", *QUICK, "--out", tmp_path / "run")[0] == 0
    record = json.loads((tmp_path / "run" / "run_info.json").read_text())["task"]
    assert record["module"] == "mine_mod" and record["file"] == str(module_file.resolve()) and len(record["sha256"]) == 64

    def fresh() -> None:
        _forget_imported_tasks()
        sys.modules.pop("mine_mod", None)
        marker.unlink(missing_ok=True)

    fresh()
    monkeypatch.chdir(elsewhere)
    code, _, err = _cli(capsys, "export", tmp_path / "run", "--out", tmp_path / "x")
    assert code == 0, err
    assert marker.exists()
    assert json.loads((tmp_path / "x" / "export.json").read_text())["task_code"] == {k: record[k] for k in ("module", "file", "sha256")}

    fresh()
    module_file.write_text(module_file.read_text() + "\n# changed\n")
    line = _one_error(capsys, "export", tmp_path / "run", "--out", tmp_path / "y")
    assert str(module_file) in line and "changed since the run started" in line and "--trust-code" in line
    assert not marker.exists() and not (tmp_path / "y").exists()
    for verb in (["soup"], ["resume", "--quiet"]):  # the same check, before anything is imported
        line = _one_error(capsys, *verb[:1], tmp_path / "run", *verb[1:])
        assert str(module_file) in line and "changed since the run started" in line
    assert not marker.exists() and "mine_mod" not in sys.modules
    monkeypatch.syspath_prepend(str(project))  # pbtnas.load imports from sys.path, like any import
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scripted = pbtnas.load(str(tmp_path / "x"))
    assert isinstance(scripted, torch.jit.ScriptModule) and not marker.exists()
    assert any(str(module_file) in str(w.message) for w in caught)

    code, _, err = _cli(capsys, "export", tmp_path / "run", "--out", tmp_path / "y", "--trust-code")
    assert code == 0, err
    assert marker.exists()


def test_installed_task_modules_need_no_trust(tmp_path, capsys):
    """A built-in task named by its module, and installed or standard-library modules: nothing is
    recorded and nothing is asked, even for a run without run_info.json."""
    from pbtnas.analysis.soup import make_soups
    from pbtnas.tasks.trust import check_run_task, check_task_code

    name = "pbtnas.tasks.simulated:SimulatedTask"
    out = tmp_path / "sim"
    assert _cli(capsys, "run", name, *QUICK, "--set", "task.step_seconds=0", "--out", out)[0] == 0
    info = json.loads((out / "run_info.json").read_text())
    assert info["task"] == {"name": name, "class": "SimulatedTask"}
    (out / "run_info.json").unlink()
    check_run_task(out, yaml.safe_load((out / "config.yaml").read_text())["task"])
    make_soups(out)
    for installed in ("yaml:YAMLObject", "json.decoder:JSONDecoder", "torch.nn:Linear"):
        check_task_code({"name": installed}, out, None)


def test_python_m_pbtnas_never_imports_a_module_from_the_working_directory(run, tmp_path):
    """End to end, in a fresh interpreter: ``python -m pbtnas`` has the working directory first
    on ``sys.path``, where a downloaded ``evil_mod.py`` may lie beside the run."""
    import os

    folder = tmp_path / "downloads"
    folder.mkdir()
    (folder / "evil_mod.py").write_text(TASK_SOURCE)
    _name_task(run, "evil_mod:Marked")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-m", "pbtnas", "export", str(run), "--out", str(tmp_path / "x")],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert str(folder / "evil_mod.py") in lines[0] and "--trust-code" in lines[0]
    assert not (folder / "IMPORTED").exists() and not (tmp_path / "x").exists()
