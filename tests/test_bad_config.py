"""Accepted nonsense becomes one error line at config time; a step where every member diverged
stops the run instead of delivering a network that never trained."""

import pytest

import pbtnas
from pbtnas.cli import main
from pbtnas.engine.runner import RunError


@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "sp_gamma=nan"], "sp_gamma: must be a finite number >= 0 (got 'nan')"),
        (["--set", "sp_lambda=-1"], "sp_lambda: must be a finite number >= 0 (got -1)"),
        (["--set", "keep_checkpoints=0"], "keep_checkpoints: must be at least 1 (got 0)"),
        (["--set", "max_retries=-1"], "max_retries: must be at least 0 (got -1)"),
        (["--set", "steps=true"], "steps: must be an integer (got True)"),
        (["--seed", "-1"], "--seed: must be an integer in [0, 4,294,967,296) (got -1)"),
        (["--device", "cudax"], "task.device 'cudax' is not a torch device"),
        (["--set", "task.lr=nan"], "task.lr: must be a finite number > 0 (got 'nan')"),
        (["--set", "task.weight_decay=-1"], "task.weight_decay: must be a finite number >= 0 (got -1)"),
        (["--set", "task.batch_size=0"], "task.batch_size: must be at least 1 (got 0)"),
        (["--set", "task.batches_per_step=-1"], "task.batches_per_step: must be at least 1 (got -1)"),
        (["--set", "task.val_fraction=0"], "task.val_fraction: must be a number in (0, 1) (got 0)"),
        (["--set", "task.test_fraction=-1"], "task.test_fraction: must be a number in (0, 1) (got -1)"),
        (["--set", "task.split_seed=-1"], "task.split_seed: must be at least 0 (got -1)"),
        (["--set", "task.width=wide"], "task.width: must be an integer (got 'wide')"),
        (["--set", "gpus_per_member=nan"], "gpus_per_member: must be a finite number >= 0 (got 'nan')"),
        (["--set", "populaton=8"], "unknown config key(s) ['populaton'] (did you mean 'population'?)"),
        (["--set", "task.widht=8"], "unknown task option(s) ['widht'] (did you mean 'width'?)"),
        (["--set", "colour=red"], "unknown config key(s) ['colour']; known keys"),  # nothing close: no guess
        (["--set", "algorithm=rando"], "algorithm: must be one of 'pbtnas', 'random', "),
        (["--set", "algorithm=rando"], "(got 'rando') (did you mean 'random'?)"),
        (["--algorithm", "no-mxing"], "--algorithm: must be one of 'pbtnas', "),
        (["--algorithm", "no-mxing"], "(got 'no-mxing') (did you mean 'no-mixing'?)"),
        (["--set", "mode=asnc"], "mode: must be one of 'sync', 'async' (got 'asnc') (did you mean 'async'?)"),
    ],
)
def test_nonsense_is_one_error_line_and_no_run_directory(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    assert main(["run", "classification", *args, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not out.exists()


def test_task_that_is_not_a_section(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("task: 5\n")
    assert main(["run", str(config), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    assert "needs a 'task' section" in capsys.readouterr().err


def test_a_step_where_every_member_diverged_stops_the_run(tmp_path):
    with pytest.raises(RunError, match="every member diverged at step 0"):
        pbtnas.run({"task": {"name": "custom_tasks:AlwaysDiverges"}}, out=str(tmp_path / "r"), population=4, steps=3, backend="inprocess")
    assert not (tmp_path / "r" / "summary.json").exists()


def test_task_given_as_a_name_is_short_for_a_section(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("task: simulated\npopulation: 4\nsteps: 1\nbackend: inprocess\nloggers: none\n")
    assert main(["run", str(config), "--set", "task.step_seconds=0", "--out", str(tmp_path / "out"), "--quiet"]) == 0
    assert main(["check", str(config), "--no-train"]) == 0
    capsys.readouterr()
    config.write_text("task: 5\n")
    assert main(["check", str(config)]) == 2  # one line, as for run (it was a traceback)
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: config needs a 'task' section with a 'name' (or 'task: NAME'), got task: 5"]


def test_a_whole_number_in_exponent_form_is_an_integer():
    # YAML 1.1 reads 1e3 as the string "1e3"
    assert pbtnas.config_from_dict({"task": "classification", "steps": "1e3"}).steps == 1000
    with pytest.raises(pbtnas.errors.ConfigError, match=r"steps: must be an integer \(got 1.5\)"):
        pbtnas.config_from_dict({"task": "classification", "steps": "1.5"})


@pytest.mark.parametrize(
    "option, message",
    [
        ("batches_per_step=0", "must be at least 1"),
        ("batch_size=-1", "must be at least 1"),
        ("lr=-1", "must be a finite number > 0"),
        ("data_seed=-1", "task.data_seed: must be at least 0 (got -1)"),
    ],
)
def test_simulated_task_options_are_checked_before_the_run(tmp_path, capsys, option, message):
    out = tmp_path / "out"
    assert main(["run", "simulated", "--set", f"task.{option}", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and not out.exists()


@pytest.mark.parametrize(
    "text, message",
    [
        ("task:\n\tname: classification\n", "is not valid YAML (line 2, column 1): found character '\\t' that cannot start any token"),
        ("task: {name: classification\n", "is not valid YAML (line 2, column 1): expected ',' or '}'"),
        ("task: classification\nsteps: 3\nsteps: 4\n", "key 'steps' is given twice (lines 2 and 3)"),
        ("task:\n  name: classification\n  width: 8\n  width: 16\n", "key 'width' is given twice (lines 3 and 4)"),
    ],
)
def test_a_config_file_yaml_would_misread_is_one_line(tmp_path, capsys, text, message):
    config = tmp_path / "my.yaml"
    config.write_text(text)
    out = tmp_path / "out"
    assert main(["run", str(config), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: config file") and message in err[0], err
    assert not out.exists()
