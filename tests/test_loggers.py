"""Loggers: consistent tags per member slot and for the population, on every backend that can run
here without a server (TensorBoard files, W&B offline mode, MLflow file store)."""

import importlib.util
import sys

import pytest

from pbtnas.engine.loggers import MetricLogger, make_loggers
from pbtnas.engine.runner import Runner
from pbtnas.errors import ConfigError

POPULATION_TAGS = {
    "population/fitness_best",
    "population/fitness_mean",
    "population/fitness_median",
    "population/fitness_worst",
    "population/best_ever",
    "population/children",
    "population/failed",
}


def _config(**overrides):
    from conftest import TINY_TASK

    from pbtnas.config import config_from_dict

    data = {"task": dict(TINY_TASK), "population": 4, "steps": 2, "seed": 4, "backend": "inprocess"}
    data.update(overrides)
    return config_from_dict(data)


def _run(tmp_path, names):
    root = tmp_path / "run"
    runner = Runner(_config(), root, progress=False)
    runner.observers.extend(make_loggers(names, root))
    summary = runner.start().run()
    return root, summary


class Recorder(MetricLogger):
    """A logger that keeps everything in memory (the contract every backend receives)."""

    def __init__(self, run_dir):
        super().__init__(run_dir)
        self.scalars, self.texts, self.config, self.closed = [], [], None, False

    def log_scalars(self, scalars, step):
        self.scalars += [(tag, step, value) for tag, value in scalars.items()]

    def log_text(self, tag, text, step):
        self.texts.append((tag, step, text))

    def log_config(self, config):
        self.config = config

    def close(self):
        self.closed = True


def test_logger_contract_tags_per_slot_and_population(tmp_path):
    root = tmp_path / "run"
    rec = Recorder(root)
    Runner(_config(), root, progress=False, observers=[rec]).start().run()
    tags = {t for t, _, _ in rec.scalars}
    for slot in range(4):
        assert {f"member/slot{slot:02d}/fitness", f"member/slot{slot:02d}/train_loss", f"member/slot{slot:02d}/uid"} <= tags
    assert POPULATION_TAGS <= tags and "final/test_accuracy" in tags
    assert sorted({s for t, s, _ in rec.scalars if t == "population/fitness_best"}) == [1, 2]
    # N=4, 2 steps: one child after step 1; the best genome whenever the best changed; the delivered one
    assert [t for t, _, _ in rec.texts if t == "lineage"] == ["lineage"]
    assert {t for t, _, _ in rec.texts} == {"lineage", "best_genome", "final_genome"}
    assert [t for t, _, _ in rec.texts][-1] == "final_genome" and "| gene | option |" in rec.texts[-1][2]
    assert rec.config["population"] == 4 and rec.closed


def test_unknown_logger_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown logger"):
        make_loggers(["tensorboard", "nope"], tmp_path)


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None, reason="tensorboard is not installed")
def test_tensorboard_writes_the_tags(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    root, summary = _run(tmp_path, ["tensorboard"])
    acc = EventAccumulator(str(root / "tensorboard"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert POPULATION_TAGS <= tags and "member/slot00/fitness" in tags and "final/test_accuracy" in tags
    best = acc.Scalars("population/best_ever")
    assert [e.step for e in best] == [1, 2] and best[-1].value == pytest.approx(summary["best_fitness"])


def test_loggers_chosen_through_the_config(tmp_path):
    from pbtnas.cli import main

    pytest.importorskip("tensorboard")
    out = tmp_path / "cli"
    assert (
        main(
            [
                "run",
                "classification-digits",
                "--population",
                "4",
                "--steps",
                "1",
                "--set",
                "task.width=4",
                "--set",
                "task.cells=1",
                "--set",
                "task.batches_per_step=2",
                "--set",
                "backend=inprocess",
                "--set",
                "loggers=tensorboard",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    assert any((out / "tensorboard").iterdir())


@pytest.mark.skipif(importlib.util.find_spec("mlflow") is None, reason="mlflow is not installed (pip install mlflow)")
def test_mlflow_file_store(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    from mlflow.tracking import MlflowClient

    root, summary = _run(tmp_path, ["mlflow"])
    client = MlflowClient(tracking_uri=(root / "mlruns").resolve().as_uri())
    exp = client.get_experiment_by_name("pbtnas")
    (run,) = client.search_runs([exp.experiment_id])
    assert run.data.params["population"] == "4" and run.info.status == "FINISHED"
    history = client.get_metric_history(run.info.run_id, "population/best_ever")
    assert [m.step for m in history] == [1, 2] and history[-1].value == pytest.approx(summary["best_fitness"])
    assert "member/slot03/fitness" in run.data.metrics


@pytest.mark.slow  # starts the wandb-core service: about 10 s
@pytest.mark.skipif(importlib.util.find_spec("wandb") is None, reason="wandb is not installed (pip install wandb)")
def test_wandb_offline_mode(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    root, _ = _run(tmp_path, ["wandb"])
    runs = list((root / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb"))


def test_backends_are_imported_only_when_chosen():
    import subprocess

    code = "import sys, pbtnas.engine.loggers, pbtnas.engine.runner; print(sorted(m for m in ('wandb', 'mlflow', 'tensorboard') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr
