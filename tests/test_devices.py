"""A device this machine lacks: a run that would train here stops with one line before it makes
a run directory (every task, built-in or not); Ray's workers are not second-guessed; a finished
GPU run is read, exported, loaded and souped on a CPU machine."""

import os

import pytest
import torch
import yaml

import pbtnas
from pbtnas.cli import main
from pbtnas.config import config_from_dict
from pbtnas.errors import ConfigError
from pbtnas.tasks.devices import check_device_for_run, device_problem, task_config_here

HERE = os.path.dirname(__file__)
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the messages on machines without CUDA")


def test_device_problems_are_named():
    assert device_problem("cpu") is None
    assert "not a torch device" in device_problem("gpu0")
    if not torch.cuda.is_available():
        assert "torch sees no CUDA device here" in device_problem("cuda:1")
    else:
        assert f"names GPU 99 but torch sees {torch.cuda.device_count()} GPU(s)" in device_problem("cuda:99")


@NO_CUDA
@pytest.mark.parametrize("source", ["classification", "gan-mnist-small", "simulated", "custom_tasks.py:Good"])
def test_a_run_on_a_missing_device_is_one_line_and_no_run_directory(source, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(HERE)
    assert main(["run", source, "--device", "cuda", "--steps", "1", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: task.device 'cuda' names a CUDA device but torch sees no CUDA device here"), err
    assert "Traceback" not in "\n".join(err) and not (tmp_path / "r").exists()


@NO_CUDA
def test_ray_workers_devices_are_not_judged_by_the_driver():
    check_device_for_run(config_from_dict({"task": {"name": "simulated", "device": "cuda"}, "backend": "ray"}))
    with pytest.raises(ConfigError):
        check_device_for_run(config_from_dict({"task": {"name": "simulated", "device": "cuda"}, "backend": "local"}))


@NO_CUDA
def test_a_gpu_run_is_exported_loaded_and_souped_on_a_cpu_machine(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(HERE)
    run_dir = tmp_path / "r"
    quick = ["--population", "4", "--steps", "3", "--backend", "inprocess", "--quiet", "--set", "loggers=none"]
    assert main(["run", "custom_tasks.py:Good", *quick, "--out", str(run_dir)]) == 0
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    config["task"]["device"] = "cuda"  # as if it had trained on a GPU machine
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    assert task_config_here(config["task"])["device"] == "cpu"
    assert main(["status", str(run_dir)]) == 0
    assert main(["export", str(run_dir), "--out", str(tmp_path / "export")]) == 0
    net = pbtnas.load(str(tmp_path / "export"))
    assert net(torch.zeros(3, 1)).shape == (3, 1)
    assert main(["soup", str(run_dir)]) == 0


@NO_CUDA
def test_resuming_on_a_machine_without_the_device_is_one_line(tiny_config, tmp_path, capsys):
    from run_helpers import StopAfter

    from pbtnas.engine.runner import Runner

    runner = Runner(tiny_config(steps=3), tmp_path / "r", progress=False)
    runner.observers.append(StopAfter(0))
    with pytest.raises(KeyboardInterrupt):
        runner.start().run()
    config = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    config["task"]["device"] = "cuda"
    (tmp_path / "r" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    assert main(["resume", str(tmp_path / "r"), "--quiet"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: task.device 'cuda' names a CUDA device")
    assert main(["resume", str(tmp_path / "r"), "--quiet", "--device", "cpu"]) == 0  # or on the CPU
