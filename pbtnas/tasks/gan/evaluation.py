"""Metrics of the GAN task: FD-clf (fitness and final), classifier IS, Stacked-MNIST modes, and
real FID / IS when ``task.inception_path`` is set."""

from __future__ import annotations

import numpy as np
import torch

from pbtnas.tasks.data import load_images
from pbtnas.tasks.devices import usable_here
from pbtnas.tasks.metrics import FeatureStats, frechet_distance, inception_score, stacked_modes
from pbtnas.tasks.metrics.classifier import ClassifierFeatures, ClassifierSettings, cached_classifier


class GanMetrics:
    """Built lazily by a :class:`~pbtnas.tasks.gan.task.GanTask`; caches reference statistics."""

    def __init__(self, task):
        o = task.options
        self.task = task
        self.stacked = o.dataset == "stacked-mnist"
        # Stacked-MNIST is scored by the single-channel MNIST classifier, channel by channel.
        if self.stacked:
            clf_name = "mnist"
            clf_data = load_images("mnist", "train", test_fraction=o.test_fraction, split_seed=o.split_seed)
        else:
            clf_name, clf_data = o.dataset, task.split("train")
        self.settings = ClassifierSettings(width=o.classifier_width, epochs=o.classifier_epochs)
        # the task's device where this process has it; a Ray driver without the workers' GPUs
        # trains and caches the classifier on its CPU (the cache is the same file either way)
        device = usable_here(task.device)
        net = cached_classifier(clf_name, clf_data, self.settings, device)
        self.features = ClassifierFeatures(net, per_channel=self.stacked, device=device)
        self.tag = f"{clf_name}-{clf_data.checksum()}-{self.settings.key()}-{o.dataset}"
        self._stats: dict[str, FeatureStats] = {}
        self._inception = None

    def reference(self, split: str) -> FeatureStats:
        if split not in self._stats:
            self._stats[split] = self.features.dataset_stats(self.task.split(split), f"{self.tag}-{split}")
        return self._stats[split]

    def fd_clf(self, images: torch.Tensor, split: str) -> float:
        """FD-clf of generated ``images`` against the real ``split`` (inf for non-finite images)."""
        if not torch.isfinite(images).all():
            return float("inf")
        feats, _ = self.features(images)
        return frechet_distance(FeatureStats.of(feats), self.reference(split))

    def final(self, images: torch.Tensor) -> dict[str, float]:
        """The final report's metrics of generated ``images``."""
        out: dict[str, float] = {"samples": len(images)}
        if not torch.isfinite(images).all():
            return {**out, "fd_clf_test": float("inf"), "fd_clf_train": float("inf")}
        feats, probs = self.features(images)
        stats = FeatureStats.of(feats)
        out["fd_clf_test"] = frechet_distance(stats, self.reference("test"))
        out["fd_clf_train"] = frechet_distance(stats, self.reference("train"))
        if self.stacked:
            # Joint probability of the three digits: 1,000 classes, one per mode.
            joint = np.einsum("na,nb,nc->nabc", probs[:, 0], probs[:, 1], probs[:, 2]).reshape(len(probs), -1)
            out["clf_is"], out["clf_is_std"] = inception_score(joint)
            out["modes"], out["kl_modes"] = stacked_modes(probs.argmax(-1))
        else:
            out["clf_is"], out["clf_is_std"] = inception_score(probs)
        if self.task.options.inception_path:
            out.update(self.inception_scores(images))
        return out

    def inception_scores(self, images: torch.Tensor) -> dict[str, float]:
        from pbtnas.tasks.metrics.inception import InceptionMetrics

        if self._inception is None:
            self._inception = InceptionMetrics(self.task.options.inception_path, self.task.device)
        real = self._inception.dataset_stats(self.task.split("test"), f"{self.task.options.dataset}-test")
        return self._inception.scores(images, real)
