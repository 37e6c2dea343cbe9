"""A user's own images as .npz: channels-last pixels, string labels or labels 1..K become a
K-class problem; the export records the class of every output and what input the network
expects, and pbtnas.load rebuilds the network without the data file."""

import json

import numpy as np
import pytest
import torch

import pbtnas
from pbtnas.errors import DataError
from pbtnas.tasks import build_task
from pbtnas.tasks.classification import load_dataset


def _images(tmp_path, labels, layout="nhwc", n=120):
    rng = np.random.default_rng(0)
    y = np.array([labels[i % len(labels)] for i in range(n)])
    x = rng.integers(0, 255, size=(n, 12, 12, 1) if layout == "nhwc" else (n, 1, 12, 12)).astype(np.uint8)
    for i, label in enumerate(y):  # a learnable signal: a bright row per class
        row = labels.index(label) * 2
        if layout == "nhwc":
            x[i, row, :, 0] = 255
        else:
            x[i, 0, row, :] = 255
    path = tmp_path / "data.npz"
    np.savez(path, X=x, y=y)
    return path


@pytest.mark.parametrize("labels", [["cat", "dog", "owl"], [1, 2, 3, 4], [10, 20]])
def test_any_labels_become_classes_0_to_k_minus_1_and_channels_last_is_read(tmp_path, labels):
    path = _images(tmp_path, labels)
    x, y, classes = load_dataset(build_task({"name": "classification", "dataset": "npz", "data_path": str(path)}).options)
    assert x.shape == (120, 1, 12, 12) and x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
    assert classes == sorted(labels) and sorted(set(y.tolist())) == list(range(len(labels)))


def test_bad_npz_is_one_clear_error(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, X=np.zeros((5, 3)), y=np.zeros(5))
    task = build_task({"name": "classification", "dataset": "npz", "data_path": str(path)})
    with pytest.raises(DataError, match="X must be"):
        task.prepare()


def test_export_records_classes_and_input_and_loads_without_the_data(tmp_path):
    path = _images(tmp_path, ["cat", "dog", "owl"])
    pbtnas.run(
        "classification",
        out=str(tmp_path / "run"),
        population=4,
        steps=2,
        backend="inprocess",
        task={"dataset": "npz", "data_path": str(path), "width": 4, "cells": 1, "batches_per_step": 2},
    )
    pbtnas.export_run(str(tmp_path / "run"), str(tmp_path / "net"))
    meta = json.loads((tmp_path / "net" / "export.json").read_text())
    assert meta["classes"] == ["cat", "dog", "owl"]
    assert meta["input"]["shape"] == ["N", 1, 12, 12] and meta["input"]["range"] == [0.0, 1.0]
    path.unlink()  # the network must not need the data file any more
    net = pbtnas.load(str(tmp_path / "net"))
    assert type(net).__name__ == "CellNet" and net.pbtnas_classes == ["cat", "dog", "owl"]
    assert net(torch.zeros(2, 1, 12, 12)).shape == (2, 3)
