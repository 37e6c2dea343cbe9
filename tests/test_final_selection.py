"""final_selection top-k-reevaluated: the top-k list, the choice on the selection split, the
classification task's selection split, and a whole run that delivers the re-scored winner."""

import pytest

from pbtnas.config import config_from_dict
from pbtnas.engine.runner import make_runner, resume_runner
from pbtnas.errors import ConfigError
from pbtnas.search.final_selection import Contender, admit, choose
from pbtnas.tasks import build_task


def c(uid, fitness):
    return Contender(uid=uid, fitness=fitness, step=0, genome={}, checkpoint=f"best/top/uid{uid}.pt")


def test_admit_keeps_the_k_best_distinct_members_with_their_best_snapshot():
    top = []
    for cand in [c(1, 0.5), c(2, 0.7), c(3, 0.6), c(1, 0.8), c(4, 0.55), c(2, 0.65)]:
        top, dropped = admit(top, cand, 3)
    assert [(x.uid, x.fitness) for x in top] == [(1, 0.8), (2, 0.7), (3, 0.6)]
    top, dropped = admit(top, c(5, 0.75), 3)
    assert [x.uid for x in top] == [1, 5, 2] and [x.uid for x in dropped] == [3]
    assert admit(top, c(6, float("-inf")), 3) == (top, [])


def test_choose_takes_the_best_selection_score_then_the_better_fitness():
    assert choose([(c(1, 0.9), 0.7), (c(2, 0.8), 0.75), (c(3, 0.7), 0.75)])[0].uid == 2
    assert choose([(c(1, 0.9), float("nan")), (c(2, 0.1), 0.2)])[0].uid == 2


def test_selection_split_is_held_apart_and_val_and_test_do_not_move():
    plain = build_task({"name": "classification", "dataset": "digits"}).data
    task = build_task({"name": "classification", "dataset": "digits", "selection_fraction": 0.1})
    data = task.data
    assert len(data["selection"][0]) == pytest.approx(0.1 * 1797, abs=10)
    assert (data["val"][1] == plain["val"][1]).all() and (data["test"][1] == plain["test"][1]).all()
    assert len(data["train"][0]) + len(data["selection"][0]) == len(plain["train"][0])


def test_a_run_delivers_the_best_of_the_top_k_on_the_selection_split(tmp_path):
    task = {"name": "classification", "dataset": "digits", "width": 4, "cells": 2, "batches_per_step": 3, "selection_fraction": 0.1}
    config = config_from_dict(
        {"task": task, "population": 4, "steps": 3, "seed": 1, "backend": "inprocess", "final_selection": "top-k-reevaluated", "reevaluate_top_k": 3}
    )
    summary = make_runner(config, tmp_path / "run", progress=False).start().run()
    scored = summary["reevaluated"]
    assert len(scored) == 3 and len({s["uid"] for s in scored}) == 3
    best = max(scored, key=lambda s: (s["selection_score"], s["fitness"]))
    assert summary["best_uid"] == best["uid"] and summary["final_selection"] == "top-k-reevaluated"
    kept = sorted(p.name for p in (tmp_path / "run" / "best" / "top").iterdir())
    assert kept == sorted(f"uid{s['uid']:05d}.pt" for s in scored)
    assert resume_runner(tmp_path / "run", progress=False).run()["best_uid"] == summary["best_uid"]


def test_top_k_without_a_selection_split_is_refused_before_the_run_directory(tmp_path):
    config = config_from_dict(
        {
            "task": {"name": "classification", "dataset": "digits"},
            "population": 4,
            "steps": 2,
            "backend": "inprocess",
            "final_selection": "top-k-reevaluated",
        }
    )
    with pytest.raises(ConfigError, match="set task.selection_fraction"):
        make_runner(config, tmp_path / "run", progress=False).start()
    assert not (tmp_path / "run").exists()
    config = config_from_dict(
        {"task": {"name": "simulated"}, "population": 4, "steps": 2, "backend": "inprocess", "final_selection": "top-k-reevaluated"}
    )
    with pytest.raises(ConfigError, match="needs a task with a selection split"):
        make_runner(config, tmp_path / "sim", progress=False).start()
