"""``check`` refuses a TorchTask whose evaluate, final_evaluate or select runs a forward pass in
train mode (dropout on: deterministic under the engine's seeding, so the determinism check cannot
see it), naming the method and the module; a task that declares ``evaluates_in_train_mode`` passes
(issue 21, item 3)."""

import os

import pytest

import pbtnas
from pbtnas.cli import main
from pbtnas.errors import TaskContractError

HERE = os.path.dirname(__file__)


def _task(name: str) -> str:
    return f"{os.path.join(HERE, 'train_mode_tasks.py')}:{name}"


def test_dropout_in_evaluate_is_refused_by_check_and_by_run(tmp_path, capsys):
    with pytest.raises(TaskContractError, match=r"DropoutInEvaluate\.evaluate ran a forward pass of module drop \(Dropout\) in train mode"):
        pbtnas.check_task(_task("DropoutInEvaluate"), train=False)
    assert main(["check", _task("DropoutInEvaluate"), "--no-train", "--set", "backend=inprocess"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "evaluate ran a forward pass of module drop (Dropout) in train mode" in err[0], err
    assert "evaluates_in_train_mode = True" in err[0]
    # a run checks a user's task before it makes its run directory (and remembers only passes)
    out = tmp_path / "r"
    for _ in range(2):
        assert (
            main(["run", _task("DropoutInEvaluate"), "--population", "4", "--steps", "1", "--backend", "inprocess", "--out", str(out), "--quiet"])
            == 2
        )
        assert "evaluate ran a forward pass of module drop (Dropout) in train mode" in capsys.readouterr().err
        assert not out.exists()


def test_declared_train_mode_and_ordinary_tasks_pass():
    assert pbtnas.check_task(_task("MonteCarloDropout"), train=False).architectures == 2
    assert pbtnas.check_task(_task("EvalMode")).trained


@pytest.mark.parametrize(
    ("name", "method", "module"),
    [("DropoutInFinalEvaluate", "final_evaluate", "drop (Dropout)"), ("DropoutInSelect", "select", "drop (Dropout)")],
)
def test_final_evaluate_and_select_are_watched_too(name, method, module):
    with pytest.raises(TaskContractError, match=rf"{name}\.{method} ran a forward pass of module {module.replace('(', '[(]').replace(')', '[)]')}"):
        pbtnas.check_task(_task(name), train=False)


def test_the_watch_ends_with_the_check():
    """The hooks are the check's: a search's own evaluations run without them."""
    from torch.nn.modules import module

    with pytest.raises(TaskContractError):
        pbtnas.check_task(_task("DropoutInSelect"), train=False)
    assert not module._global_forward_pre_hooks and not module._global_forward_hooks
