"""A task says what its report shows (``Task.report_hints``), the run records it in
``run_info.json`` and the report reads it from there, never from the task's name; a run made
before that record existed renders by the old name-based rules (``analysis/report/legacy.py``).
Optional hooks are declared on ``Task`` (``None``: not provided)."""

import json
import re

import pytest

import pbtnas
from pbtnas.analysis.report.history import load_history
from pbtnas.analysis.report.legacy import legacy_hints
from pbtnas.analysis.report.page import render
from pbtnas.errors import TaskContractError
from pbtnas.rundir.report_hints import ReportHints, hints_from_record
from pbtnas.tasks.base import Task, parse_options

QUICK = {"population": 4, "steps": 2, "backend": "inprocess", "loggers": "none"}
STAMP = re.compile(r"written by pbtnas .*? on [0-9: -]+")


def _page(run) -> str:
    """The report's page of ``run`` without its figures (drawing them is slow, and no figure
    depends on the hints); the time stamp taken out."""
    history = load_history(run)
    return STAMP.sub("", render(history, {}, [f"samples/{p.name}" for p in history.samples], "test"))


def _without_hints(run) -> None:
    """Make ``run`` look like a run of a pbtnas from before report hints."""
    path = run / "run_info.json"
    info = json.loads(path.read_text())
    del info["report"]
    path.write_text(json.dumps(info))


def test_a_custom_task_declares_what_its_report_shows(tmp_path):
    run = tmp_path / "r"
    pbtnas.run({"task": {"name": "custom_tasks:Reported"}}, out=str(run), **QUICK)
    recorded = json.loads((run / "run_info.json").read_text())["report"]
    assert recorded == {"headline": "sine regression with 64 points", "metrics_title": "Losses of the sine fit", "episode_video": False}
    page = _page(run)
    # the task's own words, then where its code comes from
    assert "sine regression with 64 points (task Reported from module custom_tasks)" in page
    assert "<h2>Losses of the sine fit</h2>" in page and "<h2>Training metrics</h2>" not in page
    # the declared sample_grid hook was called after every step, and the report shows the grids
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["after_step_0001.png", "after_step_0002.png"]
    assert "Samples of the best member" in page
    _without_hints(run)  # the same run as an older pbtnas left it: the name-based defaults
    page = _page(run)
    assert "sine regression" not in page and "task Reported from module custom_tasks" in page and "<h2>Training metrics</h2>" in page


def test_a_task_without_hooks_gets_the_reports_defaults(tmp_path):
    run = tmp_path / "r"
    pbtnas.run({"task": {"name": "custom_tasks:Good"}}, out=str(run), **QUICK)
    assert json.loads((run / "run_info.json").read_text())["report"] == ReportHints().to_record()
    assert not (run / "samples").exists()  # no sample_grid: nothing drawn, nothing failed
    page = _page(run)
    assert "<p id='what'>task Good from module custom_tasks, pbtnas</p>" in page
    assert "<h2>Training metrics</h2>" in page and "episode" not in page


def test_broken_report_hints_stop_the_run_before_its_directory_exists(tmp_path):
    with pytest.raises(TaskContractError, match=r"WrongHints.report_hints\(\) returned dict, not a pbtnas ReportHints"):
        pbtnas.run({"task": {"name": "custom_tasks:WrongHints"}}, out=str(tmp_path / "r"), **QUICK)
    assert not (tmp_path / "r").exists()


@pytest.mark.slow  # a real classification run (a few seconds); the fast equivalent is the test below
def test_an_old_run_of_a_built_in_task_renders_as_before(tmp_path):
    """A classification run's page with the hints the task recorded and, the record taken away
    (a run made before hints), with the name-based rules: the same page."""
    run = tmp_path / "r"
    tiny = {"dataset": "digits", "width": 4, "cells": 1, "batches_per_step": 2}
    pbtnas.run({"task": {"name": "classification", **tiny}}, out=str(run), **{**QUICK, "steps": 1})
    assert json.loads((run / "run_info.json").read_text())["report"]["headline"] == "classification on digits"
    new = _page(run)
    _without_hints(run)
    assert _page(run) == new
    assert "<p id='what'>classification on digits, pbtnas</p>" in new


@pytest.mark.parametrize(
    "name, options",
    [
        ("rl", {"env": "Pendulum-v1"}),
        ("rl", {"env": "cheetah-run", "pixels": True}),
        ("rl", {"env": "my_envs:Maze-v0"}),
        ("rl", {"env": "gym:HalfCheetah-v5"}),
        ("gan", {}),
        ("classification", {"dataset": "npz", "data_path": "data/own.npz"}),
        ("classification", {}),
        ("simulated", {}),
    ],
)
def test_the_built_in_tasks_hints_are_what_the_name_based_rules_gave(name, options):
    """What a built-in task records is what an older run of it is shown with, so a report of a
    run made before and after hints reads the same."""
    from pbtnas.options import options_doc
    from pbtnas.tasks import task_class

    cls = task_class(name)
    task = cls(parse_options(cls.Options, options))
    defaults = {row["name"]: row["default"] for row in options_doc(cls.Options)}
    assert task.report_hints() == legacy_hints({"task": {"name": name, **options}}, {}, defaults)


def test_hints_read_from_a_damaged_record_fall_back_field_by_field():
    assert hints_from_record(None) is None and hints_from_record(["x"]) is None
    hints = hints_from_record({"headline": 3, "metrics_title": "  ", "episode_video": "yes", "extra": 1})
    assert hints == ReportHints()  # a forged file turns on no video and shows no junk
    assert hints_from_record({"headline": "h", "episode_video": True}) == ReportHints(headline="h", episode_video=True)


def test_optional_hooks_are_declared_as_not_provided():
    from custom_tasks import Good, LazyWithoutExample, Reported

    for hook in ("sample_grid", "example_input", "record_episode"):
        assert getattr(Task, hook) is None
    assert Task.code_options == ()
    assert Good.sample_grid is None and Reported.sample_grid is not None
    assert Good.example_input is not None and LazyWithoutExample.example_input is None  # set back to None: none
