"""Options declare what they allow next to the field (``doc(..., ge=1, choices=...)``), and one
mechanism reads the run config, every built-in task's options and a user's own: kinds (a boolean
is not a number, nor a number a boolean), ranges with finite numbers, choices, lists; each error
one line naming the key as written; the listings say the same."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Annotated

import pytest
from pydantic import Field

from pbtnas.cli import main
from pbtnas.config import RunConfig, apply_overrides, config_from_dict
from pbtnas.errors import ConfigError
from pbtnas.options import doc, options_doc, parse_options
from pbtnas.search.algorithms import ALGORITHMS
from pbtnas.tasks.classification import ClassificationOptions
from pbtnas.tasks.gan.task import GanOptions
from pbtnas.tasks.rl.task import RLOptions
from pbtnas.tasks.simulated import SimulatedOptions, SimulatedTask

if TYPE_CHECKING:
    from collections import OrderedDict  # only type checkers see it: the reader goes by defaults


def _config_error(data: dict) -> str:
    with pytest.raises(ConfigError) as caught:
        config_from_dict({"task": "simulated", **data})
    return str(caught.value)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"tau": float("nan")}, "tau: must be a number in (0, 1) (got nan)"),
        ({"sp_lambda": float("inf")}, "sp_lambda: must be a finite number >= 0 (got inf)"),
        ({"cpus_per_member": "-inf"}, "cpus_per_member: must be a finite number >= 0 (got '-inf')"),
        ({"steps": True}, "steps: must be an integer (got True)"),
        ({"population": False}, "population: must be an integer (got False)"),
        ({"p_donor": True}, "p_donor: must be a number (got True)"),
        ({"lookahead": 1}, "lookahead: must be true or false (got 1)"),
        ({"donor_moments": 0.0}, "donor_moments: must be true or false (got 0.0)"),
        ({"population": 2}, "population: must be at least 4 (got 2)"),
        ({"sp_buffers": "some"}, "sp_buffers: must be one of 'all', 'parameters' (got 'some')"),  # nothing close: no guess
        ({"sp_buffers": "parameter"}, "sp_buffers: must be one of 'all', 'parameters' (got 'parameter') (did you mean 'parameters'?)"),
        ({"algorithm": "ranom"}, "algorithm: must be one of " + ", ".join(map(repr, ALGORITHMS)) + " (got 'ranom') (did you mean 'random'?)"),
        ({"loggers": {"a": 1}}, "loggers: must be a list (got {'a': 1})"),
    ],
)
def test_run_config_values_are_checked_by_their_declarations(data, message):
    assert _config_error(data) == message


def test_command_line_strings_become_the_declared_kind():
    config = config_from_dict(
        {"task": "simulated", "population": "8", "steps": "1e3", "tau": "0.5", "lookahead": "no", "loggers": "tensorboard, wandb"}
    )
    assert (config.population, config.steps, config.tau, config.lookahead) == (8, 1000, 0.5, False)
    assert config.loggers == ["tensorboard", "wandb"]
    assert config_from_dict({"task": "simulated", "loggers": ["mlflow"]}).loggers == ["mlflow"]
    # a list of strings from --set (a comma list) or from YAML (a list): one declaration each
    objectives = config_from_dict(apply_overrides({"task": "simulated"}, ["objectives=fitness,params:min", "constraints=params<=50000"]))
    assert (objectives.objectives, objectives.constraints) == (["fitness", "params:min"], ["params<=50000"])
    assert config_from_dict({"task": "simulated", "objectives": ["fitness", "params:min"]}).objectives == ["fitness", "params:min"]


@pytest.mark.parametrize(
    "options, values, message",
    [
        (ClassificationOptions, {"cells": 0}, "task.cells: must be at least 1 (got 0)"),
        (ClassificationOptions, {"in_channels": -3}, "task.in_channels: must be at least 0 (got -3)"),
        (GanOptions, {"n_critic": 0}, "task.n_critic: must be at least 1 (got 0)"),
        (GanOptions, {"eval_samples": 1}, "task.eval_samples: must be at least 2 (got 1)"),
        (GanOptions, {"space": "gan-easy"}, "task.space: must be one of 'gan', 'gan-hard' (got 'gan-easy')"),
        (RLOptions, {"nstep": 0}, "task.nstep: must be at least 1 (got 0)"),
        (RLOptions, {"eval_episodes": 100_001}, "task.eval_episodes: must be between 1 and 100,000 (got 100001)"),
        (RLOptions, {"buffer": "global"}, "task.buffer: must be one of 'member', 'shared' (got 'global')"),
        (RLOptions, {"pixels": 1}, "task.pixels: must be true or false (got 1)"),
        (SimulatedOptions, {"layers": 0}, "task.layers: must be at least 1 (got 0)"),
        (SimulatedOptions, {"layers": True}, "task.layers: must be an integer (got True)"),
        (SimulatedOptions, {"lr": float("nan")}, "task.lr: must be a finite number > 0 (got nan)"),
        (SimulatedOptions, {"jitter": 1.0}, "task.jitter: must be a number in [0, 1) (got 1.0)"),
    ],
)
def test_every_tasks_options_are_checked_by_their_declarations(options, values, message):
    with pytest.raises(ConfigError) as caught:
        parse_options(options, values)
    assert str(caught.value) == message


def test_options_built_in_python_are_held_to_their_declarations_too():
    with pytest.raises(ConfigError, match=r"^task\.lr: must be a finite number > 0 \(got inf\)$"):
        SimulatedTask(SimulatedOptions(lr=float("inf")))
    assert SimulatedTask(SimulatedOptions(layers=2)).options.layers == 2


@dataclasses.dataclass
class UsersOptions:
    """A user's own options, declared in each way the docs show."""

    width: int = doc("hidden width", 16, ge=1, le=1024)
    dropout: float = doc("dropout rate", 0.1, ge=0, lt=1)
    act: str = doc("activation", "relu", choices=("relu", "tanh"))
    depth: Annotated[int, Field(ge=2)] = doc("layers (declared with pydantic)", 3)
    targets: list[str] = doc("what to report", default_factory=lambda: ["fitness"])
    plain: int = 5  # no doc, no range: any integer
    device: str = "cpu"


def test_a_users_options_declare_ranges_choices_and_lists():
    options = parse_options(UsersOptions, {"width": "64", "dropout": 0, "targets": "fitness,params:min", "plain": -7})
    assert (options.width, options.dropout, options.targets, options.plain) == (64, 0.0, ["fitness", "params:min"], -7)
    assert parse_options(UsersOptions, {"targets": ["a", "b"]}).targets == ["a", "b"]
    for values, message in [
        ({"width": 2000}, "task.width: must be between 1 and 1,024 (got 2000)"),
        ({"dropout": float("inf")}, "task.dropout: must be a number in [0, 1) (got inf)"),
        ({"act": "gelu"}, "task.act: must be one of 'relu', 'tanh' (got 'gelu')"),
        ({"act": "tahn"}, "task.act: must be one of 'relu', 'tanh' (got 'tahn') (did you mean 'tanh'?)"),
        ({"depth": 1}, "task.depth: must be at least 2 (got 1)"),
        ({"plain": "many"}, "task.plain: must be an integer (got 'many')"),
        ({"widht": 8}, "unknown task option(s) ['widht'] (did you mean 'width'?)"),
    ]:
        with pytest.raises(ConfigError) as caught:
            parse_options(UsersOptions, values)
        assert str(caught.value).startswith(message), caught.value
    allowed = {row["name"]: row["allowed"] for row in options_doc(UsersOptions)}
    assert allowed == {
        "width": "between 1 and 1,024",
        "dropout": "a number in [0, 1)",
        "act": "one of 'relu', 'tanh'",
        "depth": "at least 2",
        "targets": "",
        "plain": "",
        "device": "",
    }


@dataclasses.dataclass
class UnresolvableOptions:
    """An annotation only a type checker can resolve: the values go by the defaults' kinds."""

    table: OrderedDict | None = None
    size: int = 4


def test_options_whose_annotations_do_not_resolve_go_by_their_defaults():
    assert parse_options(UnresolvableOptions, {"size": "6", "table": {"a": 1}}).size == 6
    with pytest.raises(ConfigError, match=r"task\.size: must be an integer \(got True\)"):
        parse_options(UnresolvableOptions, {"size": True})


def test_flags_come_from_the_run_config(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    helptext = " ".join(capsys.readouterr().out.split())
    for key in ("population", "steps", "seed", "workers", "cpus_per_member"):
        spec = {row["name"]: row for row in options_doc(RunConfig)}[key]
        assert " ".join(f"{spec['doc']} ({spec['allowed']})".split()) in helptext, key
    out = tmp_path / "out"
    assert main(["run", "simulated", "--population", "2", "--out", str(out), "--quiet"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == ["error: --population: must be at least 4 (got 2)"]
    assert not out.exists()


def test_space_lists_what_each_option_allows(capsys):
    assert main(["space", "simulated"]) == 0
    out = capsys.readouterr().out
    assert "task.layers = 4  # searchable hidden layers (2 genes each: op and activation) (at least 1)" in out
    assert "(a number in [0, 2))" in out
