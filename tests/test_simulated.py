"""The simulated task: architecture-dependent step times and a tiny real model that mixing can edit."""

import time

import numpy as np
import pytest

from pbtnas.config import config_from_dict
from pbtnas.engine.runner import Runner
from pbtnas.errors import ConfigError
from pbtnas.rundir.store import RunStore
from pbtnas.tasks import build_task
from pbtnas.tasks.presets import get_preset

FAST = {"name": "simulated", "layers": 3, "width": 4, "step_seconds": 0.0, "batches_per_step": 2}


def test_step_time_depends_on_architecture():
    task = build_task({"name": "simulated", "layers": 2, "step_seconds": 1.0, "unevenness": 1.5})
    small = {"layer0.op": "identity", "layer0.act": "relu", "layer1.op": "identity", "layer1.act": "relu"}
    big = {"layer0.op": "mlp4", "layer0.act": "relu", "layer1.op": "mlp4", "layer1.act": "tanh"}
    assert task.step_time(small) == pytest.approx(0.25) and task.step_time(big) == pytest.approx(1.75)
    even = build_task({"name": "simulated", "layers": 2, "step_seconds": 1.0, "unevenness": 0.0})
    assert even.step_time(small) == even.step_time(big) == pytest.approx(1.0)


def test_step_sleeps_and_trains():
    task = build_task({"name": "simulated", "layers": 2, "step_seconds": 0.2, "unevenness": 0.0})
    genome = task.space.stratified_population(1, np.random.default_rng(0))[0]
    state = task.init_state(genome, 1)
    start = time.perf_counter()
    new, metrics = task.train_step(genome, state, 0, 5)
    assert time.perf_counter() - start >= 0.19 and np.isfinite(metrics["train_loss"])
    assert task.evaluate(genome, new, 0) != task.evaluate(genome, state, 0)
    assert task.gene_modules("layer1.op") == {"model": ["blocks.1"]} and task.gene_modules("layer1.act") == {}


def test_bad_options_are_named():
    with pytest.raises(ConfigError, match="unevenness"):
        build_task({"name": "simulated", "unevenness": 3})


def test_pbtnas_run_on_simulated_mixes_members(tmp_path):
    config = config_from_dict({"task": FAST, "population": 4, "steps": 3, "backend": "inprocess", "seed": 1})
    summary = Runner(config, tmp_path / "r", progress=False).start().run()
    assert summary["steps_done"] == 3 and np.isfinite(summary["final_metric"])
    assert len(list(RunStore(tmp_path / "r").iter_events("child_created"))) == 2


def test_preset_exists():
    assert get_preset("simulated")["task"]["name"] == "simulated"
