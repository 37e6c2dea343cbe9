import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # tests/toy_task.py


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache_and_one_thread(tmp_path_factory):
    """Tests never write the user's ~/.cache/pbtnas, and run torch on one thread: on a 2-core
    machine two threads per test only fight the worker processes some tests start."""
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
