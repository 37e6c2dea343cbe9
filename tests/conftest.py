import os
import sys

import pytest

# Every Ray the tests start stays on loopback. Ray reads this variable once, when it is first
# imported, so it is set here, before any test module imports ray: a test that set it later (a
# multi-node cluster on 127.0.0.1) would otherwise find Ray already bound to the machine's network
# address and wait for a GCS that is not there.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

sys.path.insert(0, os.path.dirname(__file__))  # tests/toy_task.py


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache_and_one_thread(tmp_path_factory):
    """Tests never write the user's ~/.cache/pbtnas, and run torch on one thread: on a 2-core
    machine two threads per test only fight the worker processes some tests start (and the GAN
    and RL tests' tiny networks gain nothing from a second thread). No module sets its own."""
    import torch

    os.environ["PBTNAS_CACHE"] = str(tmp_path_factory.mktemp("pbtnas-cache"))
    torch.set_num_threads(1)
    yield


TINY_TASK = {"name": "classification", "dataset": "digits", "width": 4, "cells": 2, "batch_size": 32, "batches_per_step": 3}


@pytest.fixture()
def tiny_config():
    """A real classification search small enough for a unit test (about a second per run)."""

    def make(**overrides):
        from pbtnas.config import config_from_dict

        data = {"task": dict(TINY_TASK), "population": 4, "steps": 3, "seed": 3, "backend": "inprocess"}
        task = overrides.pop("task", {})
        data.update(overrides)
        data["task"].update(task)
        return config_from_dict(data)

    return make


@pytest.fixture(scope="module")
def local_ray():
    """A small local Ray (2 CPUs) for a test module, shut down after it unless it was running before."""
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture()
def no_fault_left(monkeypatch):
    """No injected fault (``PBTNAS_FAULT`` or one armed in-process) before or after the test."""
    from pbtnas import faults

    monkeypatch.delenv("PBTNAS_FAULT", raising=False)
    faults.reset()
    yield
    faults.reset()
