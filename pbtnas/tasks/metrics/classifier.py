"""FD-clf: Fréchet distance in the feature space of a small classifier trained on the real data.

The classifier is trained once per (data set, content checksum, classifier settings) and cached
(see :mod:`.cache`). For Stacked-MNIST the single-channel MNIST classifier reads each channel
separately; features are concatenated and the three predicted digits give the mode.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from pbtnas.rundir.atomic import atomic_path
from pbtnas.tasks.data import ImageSet
from pbtnas.tasks.metrics.cache import atomic_save, cache_dir, file_lock
from pbtnas.tasks.metrics.frechet import FeatureStats


class FeatureNet(nn.Module):
    """A small CNN classifier; ``forward`` returns (penultimate features, logits)."""

    def __init__(self, channels: int, n_classes: int, width: int = 32, feat_dim: int = 128):
        super().__init__()

        def block(c_in, c_out):
            return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2))

        self.body = nn.Sequential(block(channels, width), block(width, 2 * width), block(2 * width, 4 * width))
        self.fc = nn.Linear(4 * width, feat_dim)
        self.head = nn.Linear(feat_dim, n_classes)

    def forward(self, x):
        h = self.body(x).mean(dim=(2, 3))
        f = F.relu(self.fc(h))
        return f, self.head(f)


@dataclass
class ClassifierSettings:
    """What a cached classifier depends on besides the data."""

    width: int = 32
    feat_dim: int = 128
    epochs: int = 4
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0

    def key(self) -> str:
        return f"w{self.width}-f{self.feat_dim}-e{self.epochs}-b{self.batch_size}-lr{self.lr:g}-s{self.seed}"


#: classes of the self-supervised task used for a data set without labels: rotated by 0, 90,
#: 180 or 270 degrees
ROTATIONS = 4


def train_classifier(data: ImageSet, settings: ClassifierSettings, device: str | torch.device = "cpu") -> FeatureNet:
    """Train a :class:`FeatureNet` on the labelled images of ``data`` (labels ``>= 0``).

    A data set without any label (a user's unlabeled images) trains it to tell by how many
    quarter turns an image was rotated instead: a self-supervised task whose features still
    describe shapes, strokes and textures, so the Fréchet distance between real and generated
    images stays meaningful (its classifier IS is then over the 4 rotations, and says little).
    """
    labelled = np.flatnonzero(data.labels >= 0)
    rotations = len(labelled) == 0
    if rotations:
        if data.shape[1] != data.shape[2]:
            raise ValueError(f"data set {data.name!r} has no labels and non-square images: cannot train the FD-clf classifier")
        labelled = np.arange(len(data))
    n_classes = ROTATIONS if rotations else int(data.labels.max()) + 1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        net = FeatureNet(data.shape[0], n_classes, settings.width, settings.feat_dim)
    net.to(device).train()
    opt = torch.optim.Adam(net.parameters(), lr=settings.lr)
    gen = torch.Generator().manual_seed(settings.seed)
    labels = torch.from_numpy(data.labels)
    for _ in range(settings.epochs):
        order = labelled[torch.randperm(len(labelled), generator=gen).numpy()]
        for start in range(0, len(order), settings.batch_size):
            idx = order[start : start + settings.batch_size]
            x = data.batch(idx, device)
            if rotations:
                y = torch.randint(ROTATIONS, (len(idx),), generator=gen).to(device)
                x = torch.stack([torch.rot90(img, int(k), dims=(1, 2)) for img, k in zip(x, y)])
            else:
                y = labels[idx].to(device)
            # Light noise keeps the features smooth for generated images that are near, not on, the data.
            x = x + 0.05 * torch.randn(x.shape, generator=gen).to(device)
            loss = F.cross_entropy(net(x)[1], y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return net.eval()


def classifier_path(name: str, data: ImageSet, settings: ClassifierSettings) -> str:
    return os.path.join(cache_dir("fdclf"), f"{name}-{data.checksum()}-{settings.key()}.pt")


def cached_classifier(name: str, data: ImageSet, settings: ClassifierSettings, device="cpu") -> FeatureNet:
    """The classifier for ``data``: loaded from the cache, or trained (once, under a lock) and cached."""
    path = classifier_path(name, data, settings)
    with file_lock(path):
        if os.path.isfile(path):
            blob = torch.load(path, map_location="cpu", weights_only=True)
            net = FeatureNet(blob["channels"], blob["n_classes"], settings.width, settings.feat_dim)
            net.load_state_dict(blob["state"])
            return net.to(device).eval()
        net = train_classifier(data, settings, device)
        blob = {
            "state": {k: v.detach().cpu() for k, v in net.state_dict().items()},
            "channels": data.shape[0],
            "n_classes": net.head.out_features,
        }
        atomic_save(blob, path)
        return net


class ClassifierFeatures:
    """Features and class probabilities of images through a cached classifier.

    ``per_channel`` (Stacked-MNIST) runs the single-channel classifier on every channel:
    features are concatenated, probabilities are ``(N, channels, classes)``.
    """

    def __init__(self, net: FeatureNet, per_channel: bool = False, device="cpu", batch_size: int = 500):
        self.net, self.per_channel, self.device, self.batch_size = net.to(device).eval(), per_channel, device, batch_size

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        feats, probs = [], []
        for start in range(0, len(images), self.batch_size):
            x = images[start : start + self.batch_size].to(self.device).float()
            if self.per_channel:
                n, c = x.shape[:2]
                f, logits = self.net(x.reshape(n * c, 1, *x.shape[2:]))
                feats.append(f.reshape(n, -1).cpu())
                probs.append(logits.softmax(-1).reshape(n, c, -1).cpu())
            else:
                f, logits = self.net(x)
                feats.append(f.cpu())
                probs.append(logits.softmax(-1).cpu())
        return torch.cat(feats).double().numpy(), torch.cat(probs).double().numpy()

    def stats(self, images: torch.Tensor) -> FeatureStats:
        return FeatureStats.of(self(images)[0])

    def dataset_stats(self, data: ImageSet, tag: str) -> FeatureStats:
        """Reference statistics of a real split, cached next to the classifier under ``tag``."""
        path = os.path.join(cache_dir("fdclf"), f"{tag}-{data.checksum()}-stats.npz")
        with file_lock(path):
            if os.path.isfile(path):
                return FeatureStats.from_npz(path)
            feats = []
            for start in range(0, len(data), 2000):
                feats.append(self(data.batch(slice(start, start + 2000)))[0])
            stats = FeatureStats.of(np.concatenate(feats))
            with atomic_path(path, suffix=".npz") as tmp:
                stats.to_npz(tmp)
            return stats
