"""mode: async reaches the engine from every entry point: pbtnas.run, pbtnas.resume and compare
(it used to run synchronously there while writing mode: async into the config)."""

import pytest

import pbtnas
from pbtnas.cli import main
from pbtnas.engine.runner import make_runner
from pbtnas.rundir.store import RunStore

TASK = {"name": "classification", "dataset": "digits", "width": 4, "cells": 2, "batch_size": 32, "batches_per_step": 3}


def test_library_runs_async_and_resumes_async(tmp_path):
    full = pbtnas.run({"task": TASK}, out=str(tmp_path / "full"), population=4, steps=3, seed=2, backend="inprocess", mode="async")
    assert RunStore(tmp_path / "full").read_manifest()["mode"] == "async" and full["steps_done"] == 3

    class StopAfterResults:
        def __init__(self):
            self.seen = 0

        def on_member_result(self, *args):
            self.seen += 1
            if self.seen == 6:
                raise KeyboardInterrupt

    config = pbtnas.config_from_dict({"task": TASK, "population": 4, "steps": 3, "seed": 2, "backend": "inprocess", "mode": "async"})
    cut = make_runner(config, tmp_path / "cut", progress=False)
    cut.observers.append(StopAfterResults())
    with pytest.raises(KeyboardInterrupt):
        cut.start().run()
    resumed = pbtnas.resume(str(tmp_path / "cut"))
    assert RunStore(tmp_path / "cut").read_manifest()["mode"] == "async"
    assert resumed["final_metric"] == full["final_metric"] and resumed["best_uid"] == full["best_uid"]


def test_compare_runs_async(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(
        "task:\n  name: classification\n  dataset: digits\n  width: 4\n  cells: 2\n"
        "  batches_per_step: 2\npopulation: 4\nsteps: 2\nbackend: inprocess\nmode: async\n"
    )
    assert main(["compare", str(config), "--algorithms", "pbtnas,random", "--seeds", "1", "--out", str(tmp_path / "cmp"), "--quiet"]) == 0
    for name in ("pbtnas-s0", "random-s0"):
        assert RunStore(tmp_path / "cmp" / "runs" / name).read_manifest()["mode"] == "async"
