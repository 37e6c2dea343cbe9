"""A passed task check is remembered (pbtnas.tasks.check_memo): ``pbtnas run``/``resume`` of an
unchanged user task skip it; a changed file, sibling module or option, a failure, a damaged memo
file or ``pbtnas check`` make it run."""

from __future__ import annotations

import json
import textwrap

import pytest

from pbtnas.cli import main
from pbtnas.errors import TaskContractError
from pbtnas.tasks import build_task, check_memo
from pbtnas.tasks.check import CheckReport

TASK_FILE = textwrap.dedent(
    """
    from dataclasses import dataclass

    import torch
    import torch.nn.functional as F
    from torch import nn

    import pbtnas
    from pbtnas import Gene, SearchSpace
    from HELPER import WIDTH

    X = torch.linspace(-1, 1, 32).unsqueeze(1)
    Y = torch.sin(3 * X)


    class Net(nn.Module):
        def __init__(self, genome):
            super().__init__()
            self.inp = nn.Linear(1, WIDTH)
            self.block = nn.Linear(WIDTH, WIDTH) if genome["block"] == "linear" else nn.Identity()
            self.head = nn.Linear(WIDTH, 1)

        def forward(self, x):
            return self.head(torch.tanh(self.block(torch.tanh(self.inp(x)))))


    class Sine(pbtnas.TorchTask):
        @dataclass
        class Options:
            lr: float = 0.01
            device: str = "cpu"

        space = SearchSpace([Gene("block", ["linear", "skip"])])
        fitness_name = "neg_mse"

        def build(self, genome):
            return Net(genome)

        def optimizers(self, member):
            return torch.optim.SGD(member.model.parameters(), lr=self.options.lr)

        def train(self, member):
            loss = F.mse_loss(member.model(X), Y)
            member.optimizer.zero_grad()
            loss.backward()
            member.optimizer.step()
            return {"loss": loss.item()}

        def evaluate(self, member):
            return -F.mse_loss(member.model(X), Y).item()
    """
)


@pytest.fixture()
def task_dir(tmp_path, monkeypatch):
    """A task file importing a sibling module, in a folder of its own, and a cache of its own."""
    folder = tmp_path / f"tasks_{tmp_path.name}"
    folder.mkdir()
    # a sibling module name of its own: the module stays in sys.modules after the test
    (folder / "sine_task.py").write_text(TASK_FILE.replace("HELPER", f"helper_{folder.name}"))
    (folder / f"helper_{folder.name}.py").write_text("WIDTH = 4\n")
    monkeypatch.setenv("PBTNAS_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    return folder


@pytest.fixture()
def counted(monkeypatch):
    """check_task as the memo module calls it, counted (and optionally made to fail)."""
    calls: list[dict] = []
    state = {"fail": False}

    def fake(task, **flags):
        calls.append(flags)
        if state["fail"]:
            raise TaskContractError("Sine.evaluate gave 1 and then 2")
        return CheckReport(task=type(task).__name__, architectures=2, seconds=0.5)

    monkeypatch.setattr(check_memo, "check_task", fake)
    return calls, state


def _task(folder, **options):
    return build_task({"name": f"{folder / 'sine_task.py'}:Sine", **options})


def _check(task, **flags):
    values = {"seed": 0, "evaluate": True, "fresh_process": False, "train": False, "recall": True, **flags}
    return check_memo.check_once(task, **values)


def test_a_passed_check_is_skipped_the_second_time(task_dir, counted):
    calls, _ = counted
    first = _check(_task(task_dir))
    second = _check(_task(task_dir))
    assert len(calls) == 1
    assert first.remembered and not first.recalled
    assert second.recalled and second.report is None
    assert "skipped" in check_memo.outcome_line(second, "x.py:Sine")


def test_a_changed_task_file_or_sibling_module_runs_it_again(task_dir, counted):
    calls, _ = counted
    task = _task(task_dir)
    _check(task)
    with open(task_dir / "sine_task.py", "a") as fh:
        fh.write("# edited\n")
    _check(task)
    (task_dir / f"helper_{task_dir.name}.py").write_text("WIDTH = 4  # same value, other file\n")
    _check(task)
    _check(task)  # unchanged since: remembered
    assert len(calls) == 3
    key = check_memo.memo_key(task)
    assert set(key.material["files"]) == {"sine_task.py", f"helper_{task_dir.name}.py"}


def test_a_changed_option_runs_it_again(task_dir, counted):
    calls, _ = counted
    _check(_task(task_dir))
    _check(_task(task_dir, lr=0.1))
    _check(_task(task_dir, lr=0.01))  # the default, spelt out: the same task as the first
    assert len(calls) == 2


def test_a_memo_covers_only_the_parts_that_passed(task_dir, counted):
    calls, _ = counted
    task = _task(task_dir)
    _check(task, fresh_process=False)  # an in-process run's check
    assert not _check(task, fresh_process=True).recalled  # a local run also needs the fresh process
    assert _check(task, fresh_process=False).recalled
    assert _check(task, fresh_process=True).recalled
    assert not _check(task, train=True).recalled
    assert len(calls) == 3


def test_a_failed_check_is_not_remembered_and_forgets_an_earlier_pass(task_dir, counted):
    calls, state = counted
    task = _task(task_dir)
    state["fail"] = True
    with pytest.raises(TaskContractError):
        _check(task)
    assert not check_memo.memo_path(check_memo.memo_key(task)).exists()
    state["fail"] = False
    _check(task)
    state["fail"] = True
    with pytest.raises(TaskContractError):
        _check(task, train=True)  # a part not remembered yet fails
    assert check_memo.covered(check_memo.memo_key(task)) == set()
    with pytest.raises(TaskContractError):
        _check(task)  # so the part that passed before is checked again too
    assert len(calls) == 4


@pytest.mark.parametrize(
    "content",
    [b"\x00\xff garbage", b"{not json", b"[]", b'{"key": {}, "covers": ["evaluate"]}', b'{"covers": "evaluate"}', b""],
)
def test_a_damaged_memo_file_means_not_remembered(task_dir, counted, content):
    calls, _ = counted
    task = _task(task_dir)
    path = check_memo.memo_path(check_memo.memo_key(task))
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    assert not _check(task).recalled
    assert _check(task).recalled  # rewritten whole by the pass
    assert len(calls) == 1
    assert json.loads(path.read_text())["covers"] == ["evaluate"]


def test_an_unwritable_cache_only_means_not_remembered(task_dir, counted, tmp_path, monkeypatch):
    calls, _ = counted
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("PBTNAS_CACHE", str(blocker))
    outcome = _check(_task(task_dir))
    assert not outcome.remembered and check_memo.outcome_line(outcome, "x") is None
    _check(_task(task_dir))
    assert len(calls) == 2


def test_built_in_tasks_are_not_remembered():
    assert check_memo.memo_key(build_task({"name": "simulated"})) is None


def test_pbtnas_check_always_runs_and_its_pass_serves_a_run(task_dir, counted, capsys):
    calls, _ = counted
    source = f"{task_dir.name}/sine_task.py:Sine"
    for _ in range(2):
        assert main(["check", source, "--no-train"]) == 0
    assert len(calls) == 2 and all(c["evaluate"] and c["fresh_process"] for c in calls)
    assert "remembered" in capsys.readouterr().out
    task = _task(task_dir)
    assert check_memo.covered(check_memo.memo_key(task)) == {"evaluate", "fresh_process"}


def test_run_checks_a_user_task_once_and_says_so(task_dir, capsys, monkeypatch):
    """Real runs (in-process, a real check): the second run's start skips the check."""
    from pbtnas.tasks import check as check_module

    real = check_module.check_task
    calls = []
    monkeypatch.setattr(check_memo, "check_task", lambda *a, **k: calls.append(k) or real(*a, **k))
    source = f"{task_dir.name}/sine_task.py:Sine"
    args = ["--backend", "inprocess", "--population", "4", "--steps", "1", "--set", "loggers=none"]
    assert main(["run", source, *args, "--out", "r1"]) == 0
    first = capsys.readouterr().err
    assert main(["run", source, *args, "--out", "r2"]) == 0
    second = capsys.readouterr().err
    assert len(calls) == 1
    assert "task check passed in" in first and "remembered" in first
    assert "task check skipped" in second and f"pbtnas check {source}" in second
    main(["run", source, *args, "--quiet", "--out", "r3"])
    assert "task check" not in capsys.readouterr().err  # --quiet: what scripts read stays as it was
    # the same search either way
    assert (
        json.loads((task_dir.parent / "r1" / "summary.json").read_text())["best_fitness"]
        == json.loads((task_dir.parent / "r2" / "summary.json").read_text())["best_fitness"]
    )


def test_resume_of_a_start_cut_short_recalls_the_check(task_dir, capsys, monkeypatch):
    from pbtnas.config import config_from_dict
    from pbtnas.engine.runner import make_runner, resume_runner

    task = {"name": f"{task_dir / 'sine_task.py'}:Sine"}
    config = config_from_dict({"task": task, "population": 4, "steps": 1, "backend": "inprocess", "loggers": "none"})
    runner = make_runner(config, "cut", progress=False, remember_check=True).start()
    assert not runner.check_outcome.recalled
    runner.store.unlock()
    (task_dir.parent / "cut" / "population.json").unlink()  # as if the start died before its commit
    resumed = resume_runner("cut", progress=False, remember_check=True)
    assert resumed.check_outcome.recalled
    resumed.run()
