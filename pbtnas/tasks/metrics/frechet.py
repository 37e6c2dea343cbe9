"""Fréchet distance between two Gaussians fitted to feature sets.

``d^2 = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^{1/2})``. The trace of the matrix square
root is computed as ``tr((A S2 A)^{1/2})`` with ``A = S1^{1/2}`` (both symmetric PSD, so two
``eigh`` calls suffice); this equals scipy's ``sqrtm`` route but is an order of magnitude faster
at 2048 dimensions and never returns complex noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class FeatureStats:
    """Mean and covariance of a feature set (float64)."""

    mu: np.ndarray
    sigma: np.ndarray
    n: int = 0

    @classmethod
    def of(cls, features: np.ndarray) -> "FeatureStats":
        f = np.asarray(features, dtype=np.float64)
        if f.ndim != 2 or len(f) < 2:
            raise ValueError(f"need a (N >= 2, D) feature array, got shape {f.shape}")
        return cls(f.mean(axis=0), np.cov(f, rowvar=False), len(f))

    def to_npz(self, path: str) -> None:
        np.savez(path, mu=self.mu, sigma=self.sigma, n=self.n)

    @classmethod
    def from_npz(cls, path: str) -> "FeatureStats":
        with np.load(path) as f:
            return cls(f["mu"], f["sigma"], int(f["n"]))


def _sqrt_psd(m: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((m + m.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def trace_sqrt_product(s1: np.ndarray, s2: np.ndarray) -> float:
    """``tr((s1 s2)^{1/2})`` for symmetric positive semi-definite ``s1``, ``s2``."""
    a = _sqrt_psd(s1)
    w = np.linalg.eigvalsh(a @ s2 @ a)
    return float(np.sqrt(np.clip(w, 0.0, None)).sum())


def frechet_distance(a: FeatureStats, b: FeatureStats) -> float:
    """Squared Fréchet distance between the Gaussians ``a`` and ``b`` (the usual "FID" formula)."""
    diff = a.mu - b.mu
    value = diff @ diff + np.trace(a.sigma) + np.trace(b.sigma) - 2.0 * trace_sqrt_product(a.sigma, b.sigma)
    return float(max(value, 0.0))
