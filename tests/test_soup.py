"""pbtnas soup: uniform and greedy model soups of a finished run, scored, exportable, reported;
one line for a run without two members of one architecture; errors for unfinished and foreign
directories."""

import json

import pytest
import torch

import pbtnas
from pbtnas.analysis.soup import average, make_soups, read_soups
from pbtnas.cli import main
from pbtnas.search.state import MemberState


def test_average_is_the_mean_of_floating_tensors_and_keeps_counters():
    a = MemberState(models={"m": {"w": torch.tensor([1.0, 3.0]), "n": torch.tensor(5)}})
    b = MemberState(models={"m": {"w": torch.tensor([3.0, 5.0]), "n": torch.tensor(9)}})
    soup = average([a, b])
    assert torch.equal(soup.models["m"]["w"], torch.tensor([2.0, 4.0])) and int(soup.models["m"]["n"]) == 5


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("soup") / "run"
    # one architecture for everybody: every member can go into the soup
    pbtnas.run({"task": {"name": "custom_tasks:Single"}}, out=str(out), population=4, steps=4, backend="inprocess", algorithm="random", seed=3)
    return out


def test_soups_are_scored_written_and_greedy_never_loses_fitness(finished_run):
    result = make_soups(finished_run)
    assert not result.note and len(result.ingredients) >= 2
    assert result.greedy["members"][0] == result.ingredients[0]["uid"]
    assert result.greedy["fitness"] >= result.ingredients[0]["fitness"] - 1e-9
    assert sorted(result.uniform["members"]) == sorted(i["uid"] for i in result.ingredients)
    assert (finished_run / "soup" / "greedy.pt").is_file() and read_soups(finished_run)["greedy"]["checkpoint"]


def test_soup_cli_export_and_report(finished_run, tmp_path, capsys):
    if not read_soups(finished_run):
        make_soups(finished_run)
    assert main(["soup", str(finished_run)]) == 0
    assert "uniform soup of" in capsys.readouterr().out
    assert main(["export", str(finished_run), "--which", "soup-uniform", "--out", str(tmp_path / "e")]) == 0
    meta = json.loads((tmp_path / "e" / "export.json").read_text())
    assert meta["member"]["selection"] == "soup-uniform" and pbtnas.load(str(tmp_path / "e")) is not None
    pytest.importorskip("matplotlib")
    assert main(["report", str(finished_run)]) == 0
    assert "Model soups" in (finished_run / "report" / "index.html").read_text()


def test_soup_says_so_when_no_two_members_share_the_architecture(tmp_path, capsys):
    out = tmp_path / "run"
    task = {"name": "classification", "dataset": "digits", "width": 4, "cells": 2, "batches_per_step": 2}
    pbtnas.run({"task": task}, out=str(out), population=4, steps=1, backend="inprocess", algorithm="random")
    genomes = {json.dumps(m["genome"], sort_keys=True) for m in json.loads((out / "population.json").read_text())["members"]}
    assert len(genomes) == 4
    assert main(["soup", str(out)]) == 0
    text = capsys.readouterr().out.strip().splitlines()
    assert len(text) == 1 and text[0].startswith("no soup: only 1 member")


def test_soup_refuses_unfinished_and_foreign_directories(tmp_path, capsys):
    assert main(["soup", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    from run_helpers import StopAfter

    from pbtnas.engine.runner import make_runner

    config = pbtnas.config_from_dict({"task": {"name": "custom_tasks:Good"}, "population": 4, "steps": 3, "backend": "inprocess"})
    runner = make_runner(config, tmp_path / "cut", progress=False)
    runner.observers.append(StopAfter(0))
    with pytest.raises(KeyboardInterrupt):
        runner.start().run()
    assert main(["soup", str(tmp_path / "cut")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has not finished" in err[0]
