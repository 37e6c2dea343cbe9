"""Real FID and Inception Score, given a standard Inception weights file.

Nothing is downloaded. The file is the TorchScript port of the TF Inception-v3 graph that
NVIDIA's StyleGAN2-ADA / StyleGAN3 metrics use (``inception-2015-12-05.pt``, from
https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt).
Its interface, which any stand-in must share::

    model(images_uint8_NCHW, return_features=True) -> (N, 2048) pool features
    model(images_uint8_NCHW, no_output_bias=True)  -> (N, 1008) class probabilities

It resizes internally, so 32x32 and 48x48 images go in as they are (grey images are repeated
to three channels).
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
import torch

from pbtnas.errors import DataError
from pbtnas.rundir.atomic import atomic_path
from pbtnas.tasks.data import ImageSet
from pbtnas.tasks.metrics.cache import cache_dir, file_lock
from pbtnas.tasks.metrics.frechet import FeatureStats, frechet_distance
from pbtnas.tasks.metrics.scores import inception_score


def _to_uint8_rgb(images: torch.Tensor) -> torch.Tensor:
    x = ((images.float() + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x


class InceptionMetrics:
    """FID and IS through the network saved at ``path`` (see the module docstring)."""

    def __init__(self, path: str, device: str | torch.device = "cpu", batch_size: int = 200):
        path = os.path.expanduser(path)
        if not os.path.isfile(path):
            raise DataError(
                f"task.inception_path {path!r} does not exist: download inception-2015-12-05.pt from "
                "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt "
                "and give its path"
            )
        try:
            self.model = torch.jit.load(path, map_location=device).eval()
        except (RuntimeError, ValueError) as exc:
            raise DataError(f"task.inception_path {path!r} is not a TorchScript Inception network: {exc}") from exc
        self.path, self.device, self.batch_size = path, device, batch_size
        with open(path, "rb") as fh:
            self.file_hash = hashlib.sha256(fh.read()).hexdigest()[:16]

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """(pool features, class probabilities) of images in ``[-1, 1]``."""
        feats, probs = [], []
        for start in range(0, len(images), self.batch_size):
            x = _to_uint8_rgb(images[start : start + self.batch_size]).to(self.device)
            feats.append(self.model(x, return_features=True).double().cpu())
            probs.append(self.model(x, no_output_bias=True).double().cpu())
        return torch.cat(feats).numpy(), torch.cat(probs).numpy()

    def dataset_stats(self, data: ImageSet, tag: str) -> FeatureStats:
        """Reference statistics of real images, cached by data and weights checksum."""
        path = os.path.join(cache_dir("inception"), f"{tag}-{data.checksum()}-{self.file_hash}.npz")
        with file_lock(path):
            if os.path.isfile(path):
                return FeatureStats.from_npz(path)
            feats = [self(data.batch(slice(s, s + 1000)))[0] for s in range(0, len(data), 1000)]
            stats = FeatureStats.of(np.concatenate(feats))
            with atomic_path(path, suffix=".npz") as tmp:
                stats.to_npz(tmp)
            return stats

    def scores(self, fake: torch.Tensor, real: FeatureStats) -> dict[str, float]:
        feats, probs = self(fake)
        is_mean, is_std = inception_score(probs)
        return {"fid": frechet_distance(FeatureStats.of(feats), real), "is": is_mean, "is_std": is_std}
