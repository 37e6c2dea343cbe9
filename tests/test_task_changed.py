"""A run resumed after its task file was edited: the checkpoints no longer fit the networks, and
resume says so in one line before anything runs (it used to fail every member at its first step
with torch's "Error(s) in loading state_dict"); restoring the file lets the run finish."""

import os
import shutil
import sys

import pytest
import torch
from run_helpers import StopAfter

import pbtnas
from pbtnas.config import config_from_dict
from pbtnas.engine.runner import Runner
from pbtnas.errors import CheckpointError, ConfigError, error_headline
from pbtnas.search.state import MemberState, state_mismatch

HERE = os.path.dirname(__file__)


def test_resume_after_the_network_changed_is_one_line_and_restoring_the_file_finishes_the_run(tmp_path):
    task_file = tmp_path / "my_task.py"
    shutil.copy(os.path.join(HERE, "custom_tasks.py"), task_file)
    config = config_from_dict({"task": {"name": f"{task_file}:Good"}, "population": 4, "steps": 3, "backend": "inprocess"})
    runner = Runner(config, tmp_path / "run", progress=False)
    runner.observers.append(StopAfter(1))
    with pytest.raises(KeyboardInterrupt):
        runner.start().run()
    original = task_file.read_text()
    task_file.write_text(original.replace("self.head = nn.Linear(8, 1)", "self.head = nn.Linear(8, 2)"))
    forget_task_files()
    changed = r"does not fit the task's network any more \(model:head.weight is \(1, 8\) in the checkpoint and \(2, 8\)"
    with pytest.raises(CheckpointError, match=changed):
        Runner.resume(tmp_path / "run", progress=False)
    # export of the stopped run's best network: a changed task file is refused unless trusted
    # (issue 20.1); trusted, the network that no longer fits is one error and nothing is written
    with pytest.raises(ConfigError, match="has changed since the run started"):
        pbtnas.export_run(tmp_path / "run", tmp_path / "exported")
    with pytest.raises(CheckpointError, match=r"do not fit the task's network \(model:head.weight is \(1, 8\) stored and \(2, 8\)"):
        pbtnas.export_run(tmp_path / "run", tmp_path / "exported", trust_code=True)
    assert not (tmp_path / "exported").exists()
    task_file.write_text(original)
    forget_task_files()
    assert Runner.resume(tmp_path / "run", progress=False).run()["steps_done"] == 3


def forget_task_files():
    """What a new ``pbtnas resume`` process does: import the task file as it is now."""
    from pbtnas.tasks import _CACHE

    for name in [n for n in sys.modules if n.startswith("pbtnas_user_my_task")]:
        del sys.modules[name]
    _CACHE.clear()


def test_state_mismatch_names_the_first_difference():
    a = MemberState(models={"model": {"w": torch.zeros(2, 3), "b": torch.zeros(2)}})
    assert state_mismatch(a, a) == ""
    assert state_mismatch(a, MemberState(models={})) == "it has no model 'model'"
    assert state_mismatch(a, MemberState(models={"model": {"w": torch.zeros(2, 3)}})) == "model:b is missing"
    grown = MemberState(models={"model": {"w": torch.zeros(2, 3), "b": torch.zeros(2), "c": torch.zeros(1)}})
    assert state_mismatch(a, grown) == "model:c is no longer in the network"
    wide = MemberState(models={"model": {"w": torch.zeros(4, 3), "b": torch.zeros(2)}})
    assert state_mismatch(a, wide) == "model:w is (4, 3) in the checkpoint and (2, 3) in the network"


def test_an_error_headline_keeps_the_line_that_says_what_went_wrong():
    torch_error = "RuntimeError: Error(s) in loading state_dict for Net:\n\tsize mismatch for head.weight: ...\nTraceback (most recent call last):"
    assert error_headline(torch_error) == "RuntimeError: Error(s) in loading state_dict for Net: size mismatch for head.weight: ..."
    assert error_headline("ValueError: bad\nTraceback (most recent call last):") == "ValueError: bad"
    assert error_headline("KeyError:\nTraceback (most recent call last):") == "KeyError:"
    assert error_headline("") == ""
