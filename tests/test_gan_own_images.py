"""The GAN task on a user's own images (``task.dataset=npz``): labelled or not, grey or RGB,
channels-last or not, resized when asked; bad files are one clear error; a run records the file
by absolute path and its exported generator loads without the file."""

import json
import os

import numpy as np
import pytest
import torch

import pbtnas
from pbtnas.cli import main
from pbtnas.errors import DataError
from pbtnas.tasks import portable_task_config
from pbtnas.tasks.data import ImageSet, load_images
from pbtnas.tasks.metrics.classifier import ROTATIONS, ClassifierSettings, train_classifier


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PBTNAS_CACHE", str(tmp_path / "cache"))


def _images(n=100, size=16, channels=3, nhwc=True, seed=0):
    """Squares of one of 2 brightness levels on a dark background: a learnable picture."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 40, size=(n, channels, size, size)).astype(np.uint8)
    for i in range(n):
        x[i, :, 4:12, 4:12] = 150 + 100 * (i % 2)
    return np.moveaxis(x, 1, -1) if nhwc else x


def test_labelled_channels_last_images_are_split_by_label_and_kept_as_8_bit(tmp_path):
    path = tmp_path / "own.npz"
    np.savez(path, X=_images(), y=np.array(["dim", "bright"] * 50))
    train, test = load_images("npz", "train", data_path=str(path)), load_images("npz", "test", data_path=str(path))
    assert train.images.shape == (80, 3, 16, 16) and test.images.shape == (20, 3, 16, 16)
    assert train.images.dtype == np.uint8 and train.images.max() == 250
    assert sorted(np.bincount(test.labels).tolist()) == [10, 10]  # stratified, labels 0..K-1


def test_unlabelled_grey_images_are_resized_and_split_at_random(tmp_path):
    path = tmp_path / "own.npz"
    np.savez(path, X=_images(channels=1, size=12, nhwc=False).astype(np.float32) / 255.0)
    train = load_images("npz", "train", data_path=str(path), image_size=24)
    assert train.images.shape == (80, 1, 24, 24) and (train.labels == -1).all()
    with pytest.raises(DataError, match=r"images are 12x12; .* set task.image_size \(e.g. 16\)"):
        load_images("npz", "train", data_path=str(path))


@pytest.mark.parametrize(
    "arrays, match",
    [
        ({"X": np.zeros((4, 8, 8, 4), np.uint8)}, "images have 4 channels"),
        ({"X": np.zeros((4, 3, 8, 16), np.uint8)}, "images are 8x16"),
        ({"X": np.zeros((4, 3), np.uint8)}, "X must be"),
        ({"images": np.zeros((4, 8, 8), np.uint8)}, "no array 'X'"),
        ({"X": np.full((4, 8, 8), np.nan)}, "NaN"),
        ({"X": np.zeros((1, 8, 8), np.uint8)}, "the train split of"),  # 1 image: nothing to compare
    ],
)
def test_a_bad_file_is_one_error_line_and_no_run_directory(tmp_path, capsys, arrays, match):
    path = tmp_path / "own.npz"
    np.savez(path, **arrays)
    out = tmp_path / "run"
    code = main(["run", "gan-mnist-small", "--set", "task.dataset=npz", "--set", f"task.data_path={path}", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error:") and match in err[0], err
    assert not out.exists()


def test_without_labels_the_fd_classifier_learns_rotations():
    data = ImageSet(np.moveaxis(_images(n=64), -1, 1).copy(), np.full(64, -1), "npz")
    net = train_classifier(data, ClassifierSettings(width=8, feat_dim=16, epochs=1, batch_size=32))
    assert net.head.out_features == ROTATIONS
    features, logits = net(data.batch(slice(0, 4)))
    assert features.shape == (4, 16) and logits.shape == (4, ROTATIONS)


def test_a_run_on_own_images_records_the_file_absolutely_and_exports_a_generator_that_loads_without_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.savez("own.npz", X=_images(n=120))
    tiny = {"width": 8, "disc_width": 8, "latent_dim": 12, "batch_size": 8, "batches_per_step": 4, "n_critic": 2}
    tiny |= {"eval_samples": 50, "final_samples": 50, "classifier_epochs": 1, "classifier_width": 8}
    task = {"name": "gan", "dataset": "npz", "data_path": "own.npz", **tiny}
    summary = pbtnas.run({"task": task}, out="run", population=4, steps=1, backend="inprocess")
    assert np.isfinite(summary["final_metric"])
    recorded = pbtnas.rundir.store.RunStore("run").read_config()["task"]
    assert recorded["data_path"] == str(tmp_path / "own.npz")
    pbtnas.export_run("run", "best")
    record = json.loads(open("best/export.json").read())
    assert record["task"]["channels"] == 3 and record["task"]["image_size"] == 16
    os.remove("own.npz")
    generator = pbtnas.load("best")
    assert generator(torch.randn(2, 12)).shape == (2, 3, 16, 16)


def test_only_relative_paths_that_exist_become_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    config = portable_task_config({"name": "gan", "data_root": "data", "data_path": "missing.npz", "inception_path": "~/w.pt", "dataset": "data"})
    assert config["data_root"] == str(tmp_path / "data")
    assert config["data_path"] == "missing.npz" and config["inception_path"] == "~/w.pt"
    assert config["dataset"] == "data"  # not a path option: left alone


def test_a_folder_as_data_path_and_no_test_split_are_one_line(tmp_path, capsys):
    for args, match in (
        (["--set", "task.dataset=npz", "--set", f"task.data_path={tmp_path}"], "is a folder"),
        (["--set", "task.test_fraction=0"], "task.test_fraction: must be a number in (0, 1) (got 0)"),
    ):
        out = tmp_path / "run"
        assert main(["run", "gan-mnist-small", *args, "--out", str(out), "--quiet"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and match in err[0], err
        assert not out.exists()
