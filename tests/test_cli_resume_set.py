"""``pbtnas resume RUN_DIR --set key=value``: the budget, workers, backend, loggers and device may
change (kept in config.yaml, journaled); the search itself may not, and each refusal says why."""

import json

import pytest
import yaml
from run_helpers import StopAfter, fitness_trace

from pbtnas.cli import main
from pbtnas.config import config_from_dict
from pbtnas.engine.runner import Runner
from pbtnas.rundir.store import RunStore
from pbtnas.tasks.presets import get_preset


def _config(steps):
    data = get_preset("simulated")
    data.update(population=4, steps=steps, seed=4, backend="inprocess")
    data["task"]["step_seconds"] = 0.0
    return config_from_dict(data)


@pytest.fixture()
def stopped(tmp_path):
    """A 2-step run stopped after its first step."""
    root = tmp_path / "stopped"
    runner = Runner(_config(2), root, progress=False, observers=[StopAfter(0)]).start()
    with pytest.raises(KeyboardInterrupt):
        runner.run()
    return root


def test_longer_budget_and_other_workers_continue_like_an_uninterrupted_run(stopped, tmp_path, capsys):
    reference = tmp_path / "reference"
    Runner(_config(4), reference, progress=False).start().run()
    assert main(["resume", str(stopped), "--set", "steps=4", "--workers", "1", "--device", "cpu", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["steps_done"] == 4
    assert "changed steps: 2 -> 4" in captured.err and "changed workers: 0 -> 1" in captured.err
    assert fitness_trace(stopped) == fitness_trace(reference)
    stored = yaml.safe_load((stopped / "config.yaml").read_text())
    assert stored["steps"] == 4 and stored["workers"] == 1
    changed = list(RunStore(stopped).iter_events("config_changed"))
    assert changed[0]["changes"]["steps"] == {"from": 2, "to": 4}


@pytest.mark.parametrize(
    "args,message",
    [
        (["--set", "population=8"], "cannot change population (the population lives in the checkpoints"),
        (["--set", "seed=1"], "cannot change seed (every random stream"),
        (
            ["--set", "algorithm=random", "--set", "p_donor=0.5"],
            "cannot change algorithm (it changes how the population is searched); p_donor (it changes the search",
        ),
        (["--set", "task.width=4"], "cannot change task.width (it changes the search; start a new run"),
        (["--steps", "1"], "steps=1 leaves nothing to train: 1 steps are already done"),
        (["--set", "colour=red"], "unknown config key(s) ['colour']"),
        (["--set", "workers=many"], "workers: must be an integer (got 'many')"),
    ],
)
def test_what_may_not_change_is_refused_with_the_reason(stopped, capsys, args, message):
    before = (stopped / "config.yaml").read_text()
    assert main(["resume", str(stopped), *args, "--quiet"]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0], err
    assert (stopped / "config.yaml").read_text() == before  # nothing changed
    assert not list(RunStore(stopped).iter_events("config_changed"))


def test_a_finished_run_says_so_and_refuses_a_budget_it_has_spent(stopped, capsys):
    assert main(["resume", str(stopped), "--quiet"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(["resume", str(stopped), "--quiet"]) == 0  # nothing to train: says so, prints the summary as before
    captured = capsys.readouterr()
    assert json.loads(captured.out) == first
    lines = [line for line in captured.err.splitlines() if not line.startswith("TensorBoard: ")]  # where its logs are
    delivered = RunStore(stopped).read_summary()["best_uid"]
    assert len(lines) == 1 and lines[0].startswith(f"the run had finished after 2 steps and delivered member {delivered}:"), captured.err
    assert f"pbtnas resume {stopped} --set steps=N (N > 2)" in lines[0]
    for steps in ("2", "1"):
        assert main(["resume", str(stopped), "--set", f"steps={steps}", "--quiet"]) == 2
        err = capsys.readouterr().err.splitlines()
        assert err == [f"error: steps={steps} leaves nothing to train: the run has finished after 2 steps (give it more budget with steps=3 or more)"]


# -- the library applies the same policy (one implementation, in pbtnas.engine.resume_policy) ------
@pytest.mark.parametrize(
    "overrides,args",
    [
        ({"seed": 99}, ["--set", "seed=99"]),
        ({"population": 8}, ["--set", "population=8"]),
        ({"task": {"width": 4}}, ["--set", "task.width=4"]),
        ({"task.width": 4, "algorithm": "random"}, ["--set", "task.width=4", "--set", "algorithm=random"]),
        ({"steps": 1}, ["--steps", "1"]),
        ({"colour": "red"}, ["--set", "colour=red"]),
    ],
)
def test_the_library_refuses_what_the_cli_refuses_with_its_message(stopped, capsys, overrides, args):
    import pbtnas
    from pbtnas.errors import ConfigError

    before = (stopped / "config.yaml").read_text(), (stopped / "journal.jsonl").read_text()
    assert main(["resume", str(stopped), *args, "--quiet"]) == 2
    cli = capsys.readouterr().err.strip()
    with pytest.raises(ConfigError) as refused:
        pbtnas.resume(str(stopped), **overrides)
    assert cli == f"error: {refused.value}"
    assert ((stopped / "config.yaml").read_text(), (stopped / "journal.jsonl").read_text()) == before  # nothing written


def test_an_allowed_change_via_the_library_is_kept_and_journaled_like_the_cli(tmp_path, capsys):
    import pbtnas

    roots = {}
    for name in ("cli", "library"):
        roots[name] = root = tmp_path / name
        runner = Runner(_config(2), root, progress=False, observers=[StopAfter(0)]).start()
        with pytest.raises(KeyboardInterrupt):
            runner.run()
    assert main(["resume", str(roots["cli"]), "--set", "steps=3", "--workers", "1", "--set", "loggers=none", "--device", "cpu", "--quiet"]) == 0
    capsys.readouterr()
    summary = pbtnas.resume(str(roots["library"]), steps=3, workers=1, loggers="none", task={"device": "cpu"})
    assert summary["steps_done"] == 3
    assert (roots["cli"] / "config.yaml").read_text() == (roots["library"] / "config.yaml").read_text()
    changed = [list(RunStore(roots[name]).iter_events("config_changed")) for name in ("cli", "library")]
    assert len(changed[0]) == len(changed[1]) == 1
    assert (
        changed[0][0]["changes"]
        == changed[1][0]["changes"]
        == {
            "steps": {"from": 2, "to": 3},
            "workers": {"from": 0, "to": 1},
            "loggers": {"from": [], "to": ["none"]},
            "task.device": {"from": None, "to": "cpu"},
        }
    )
    assert fitness_trace(roots["cli"]) == fitness_trace(roots["library"])
