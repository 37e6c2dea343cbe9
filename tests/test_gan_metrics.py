"""Metrics: the Fréchet distance (against scipy's sqrtm), IS and mode counting, the cached
FD-clf classifier, and the real FID/IS path through a stand-in Inception network."""

import os

import numpy as np
import pytest
import scipy.linalg
import torch

from pbtnas.tasks.data import ImageSet
from pbtnas.tasks.metrics import FeatureStats, frechet_distance, inception_score, stacked_modes
from pbtnas.tasks.metrics.classifier import ClassifierFeatures, ClassifierSettings, cached_classifier, classifier_path


def scipy_frechet(a: FeatureStats, b: FeatureStats) -> float:
    covmean = scipy.linalg.sqrtm(a.sigma @ b.sigma)
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    d = a.mu - b.mu
    return float(d @ d + np.trace(a.sigma) + np.trace(b.sigma) - 2 * np.trace(covmean))


@pytest.mark.parametrize("dim", [8, 64, 256])
def test_frechet_distance_matches_scipy_sqrtm(dim):
    rng = np.random.default_rng(dim)
    x = rng.normal(size=(4 * dim, dim)) @ rng.normal(size=(dim, dim))
    y = 0.5 + rng.normal(size=(3 * dim, dim)) @ rng.normal(size=(dim, dim))
    a, b = FeatureStats.of(x), FeatureStats.of(y)
    ours, ref = frechet_distance(a, b), scipy_frechet(a, b)
    assert ours == pytest.approx(ref, rel=1e-6, abs=1e-6)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6 * np.trace(a.sigma))


def test_inception_score_bounds_and_stacked_modes():
    confident = np.eye(10)[np.arange(1000) % 10]
    assert inception_score(confident)[0] == pytest.approx(10.0, rel=1e-6)
    assert inception_score(np.full((100, 10), 0.1))[0] == pytest.approx(1.0)
    digits = np.stack(np.unravel_index(np.arange(1000), (10, 10, 10)), axis=1)
    assert stacked_modes(digits) == (1000, pytest.approx(0.0, abs=1e-12))
    modes, kl = stacked_modes(np.zeros((50, 3), dtype=int))
    assert modes == 1 and kl == pytest.approx(np.log(1000))


def _toy_set(n=400, seed=0):
    # Two classes a classifier separates at once: bright top half vs bright bottom half.
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=n)
    images = rng.integers(0, 60, size=(n, 1, 16, 16), dtype=np.uint8)
    for i, lbl in enumerate(labels):
        images[i, 0, (0 if lbl == 0 else 8) : (8 if lbl == 0 else 16)] += 180
    return ImageSet(images, labels.astype(np.int64), "toy")


def test_fd_clf_classifier_is_trained_once_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("PBTNAS_CACHE", str(tmp_path))
    data = _toy_set()
    settings = ClassifierSettings(width=4, feat_dim=8, epochs=6, batch_size=32)
    path = classifier_path("toy", data, settings)
    assert path.startswith(str(tmp_path)) and not os.path.exists(path)
    net = cached_classifier("toy", data, settings)
    assert os.path.isfile(path)
    mtime = os.path.getmtime(path)
    again = cached_classifier("toy", data, settings)
    assert os.path.getmtime(path) == mtime
    for k, v in net.state_dict().items():
        assert torch.equal(v, again.state_dict()[k])
    feats = ClassifierFeatures(again)
    _, probs = feats(data.floats())
    assert (probs.argmax(1) == data.labels).mean() > 0.9  # it learned the toy task
    # FD-clf separates real from shifted images and is ~0 between two halves of the real set.
    real = feats.dataset_stats(data, "toy-train")
    assert os.path.isfile(os.path.join(tmp_path, "fdclf", f"toy-train-{data.checksum()}-stats.npz"))
    other = _toy_set(seed=1)
    noise = torch.rand(400, 1, 16, 16) * 2 - 1
    assert frechet_distance(feats.stats(other.floats()), real) < 0.2 * frechet_distance(feats.stats(noise), real)
    # A changed data set gets a different key (its checksum), never a stale classifier.
    assert classifier_path("toy", _toy_set(seed=2), settings) != path


class StandInInception(torch.nn.Module):
    """Same interface as NVIDIA's TorchScript Inception: uint8 images in, features or probs out."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 16, 3, stride=2)
        self.fc = torch.nn.Linear(16, 1008)

    def forward(self, img: torch.Tensor, return_features: bool = False, use_fp16: bool = False, no_output_bias: bool = False) -> torch.Tensor:
        assert img.dtype == torch.uint8 and img.shape[1] == 3
        x = torch.nn.functional.interpolate(img.float() / 255.0, size=(29, 29), mode="bilinear")
        f = torch.relu(self.conv(x)).mean(dim=(2, 3))
        if return_features:
            return f
        logits = torch.nn.functional.linear(f, self.fc.weight) if no_output_bias else self.fc(f)
        return logits.softmax(-1)


def test_real_fid_and_is_path_through_a_stand_in_network(tmp_path, monkeypatch):
    from pbtnas.errors import DataError
    from pbtnas.tasks.metrics.inception import InceptionMetrics

    monkeypatch.setenv("PBTNAS_CACHE", str(tmp_path))
    torch.manual_seed(0)
    path = str(tmp_path / "inception-standin.pt")
    torch.jit.script(StandInInception()).save(path)
    metrics = InceptionMetrics(path, batch_size=64)
    real = ImageSet(np.random.default_rng(0).integers(0, 256, size=(200, 1, 32, 32), dtype=np.uint8), np.zeros(200, dtype=np.int64), "grey")
    stats = metrics.dataset_stats(real, "grey-test")
    same = metrics.scores(real.floats(), stats)
    shifted = metrics.scores(real.floats() * 0.2 - 0.8, stats)
    assert same["fid"] < 1e-6 < shifted["fid"]
    assert 1.0 <= same["is"] < 1008
    with pytest.raises(DataError, match="inception-2015-12-05.pt"):
        InceptionMetrics(str(tmp_path / "missing.pt"))
