"""Offline image data: the wheel-based sets, CIFAR-10 / STL-10 folders in their standard
formats, and the restricted unpickler."""

import importlib.util
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from pbtnas.errors import DataError
from pbtnas.tasks.data import check_available, load_images
from pbtnas.tasks.data.safe_pickle import safe_load


def test_mnist_5k_is_padded_split_and_scaled():
    train, test = load_images("mnist", "train"), load_images("mnist", "test")
    assert train.images.shape == (4000, 1, 32, 32) and test.images.shape == (1000, 1, 32, 32)
    assert train.images[:, :, :2].max() == 0 and train.images[:, :, :, -2:].max() == 0  # the padding
    x = train.batch(np.arange(10))
    assert x.min() >= -1 and x.max() <= 1 and x.min() == -1
    # Fixed, disjoint, stratified split.
    assert np.bincount(test.labels).tolist() == [100] * 10
    assert not set(map(bytes, train.images[:200].reshape(200, -1))) & set(map(bytes, test.images.reshape(1000, -1)))


def test_stacked_mnist_has_three_digit_channels_and_1000_modes():
    data = load_images("stacked-mnist", "train", stacked_size=3000)
    mnist = load_images("mnist", "train")
    assert data.images.shape == (3000, 3, 32, 32)
    assert data.labels.min() >= 0 and data.labels.max() < 1000 and len(np.unique(data.labels)) > 900
    # Each channel is a real MNIST digit whose label is the matching decimal digit.
    lookup = {bytes(img): int(lbl) for img, lbl in zip(mnist.images.reshape(len(mnist), -1), mnist.labels)}
    for img, label in zip(data.images[:20], data.labels[:20]):
        digits = [lookup[bytes(img[c].reshape(-1))] for c in range(3)]
        assert 100 * digits[0] + 10 * digits[1] + digits[2] == label


@pytest.mark.skipif(
    importlib.util.find_spec("animal_shape_mnist") is None, reason="the 'gan' extra (animal-shape-mnist) is not installed: pip install -e '.[gan]'"
)
def test_animal_shape_mnist_loads_without_tensorflow():
    code = (
        "import sys; from pbtnas.tasks.data import load_images; d = load_images('animal-shape-mnist', 'train');"
        "print(d.images.shape, d.labels.max()); assert 'tensorflow' not in sys.modules"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "(8000, 1, 32, 32)" in out.stdout


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_restricted_unpickler_refuses_code_and_accepts_arrays():
    with pytest.raises(DataError, match="not allowed"):
        safe_load(pickle.dumps(_Evil()), "evil.pkl")
    arr = np.arange(6, dtype=np.uint8).reshape(2, 3)
    back = safe_load(pickle.dumps({b"data": arr, b"labels": [1, 2]}, protocol=2), "ok.pkl", encoding="bytes")
    assert np.array_equal(back[b"data"], arr) and back[b"labels"] == [1, 2]


def write_cifar(root, n=20):
    folder = os.path.join(root, "cifar-10-batches-py")
    os.makedirs(folder)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {
            b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
            b"labels": [int(v) for v in rng.integers(0, 10, size=n)],
            b"batch_label": b"synthetic",
        }
        with open(os.path.join(folder, name), "wb") as fh:
            pickle.dump(batch, fh, protocol=2)
    return folder


def write_stl(root, n=12):
    folder = os.path.join(root, "stl10_binary")
    os.makedirs(folder)
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        x = rng.integers(0, 256, size=(n, 3, 96, 96), dtype=np.uint8)
        x.transpose(0, 1, 3, 2).tofile(os.path.join(folder, f"{split}_X.bin"))  # column-major on disk
        rng.integers(1, 11, size=n, dtype=np.uint8).tofile(os.path.join(folder, f"{split}_y.bin"))
    return folder


def test_cifar10_folder_in_the_python_format(tmp_path):
    folder = write_cifar(str(tmp_path))
    train, test = load_images("cifar10", "train", data_root=str(tmp_path)), load_images("cifar10", "test", data_root=folder)
    assert train.images.shape == (100, 3, 32, 32) and test.images.shape == (20, 3, 32, 32)
    with open(os.path.join(folder, "test_batch"), "rb") as fh:
        raw = pickle.load(fh)
    assert np.array_equal(test.images[0], raw[b"data"][0].reshape(3, 32, 32))


def test_stl10_folder_in_the_binary_format_is_resized(tmp_path):
    write_stl(str(tmp_path))
    full = load_images("stl10", "test", data_root=str(tmp_path), image_size=96)
    raw = np.fromfile(os.path.join(tmp_path, "stl10_binary", "test_X.bin"), dtype=np.uint8).reshape(-1, 3, 96, 96)
    assert np.array_equal(full.images[3, 1], raw[3, 1].T)  # orientation: STL-10 stores columns first
    small = load_images("stl10", "train", data_root=str(tmp_path))
    assert small.images.shape == (12, 3, 48, 48) and small.labels.min() >= 0


def test_missing_or_malformed_folders_say_what_to_do(tmp_path):
    with pytest.raises(DataError, match="cifar-10-python.tar.gz"):
        check_available("cifar10", str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="needs task.data_root"):
        check_available("stl10", "")
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "data_batch_1").write_bytes(b"not a pickle at all")
    with pytest.raises(DataError, match="data_batch_1"):
        load_images("cifar10", "train", data_root=str(tmp_path))
