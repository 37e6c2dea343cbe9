"""Scores computed from class probabilities: an Inception-Score analogue and Stacked-MNIST modes."""

from __future__ import annotations

import numpy as np


def inception_score(probs: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """``exp(E_x KL(p(y|x) || p(y)))`` averaged over ``splits`` chunks: (mean, std).

    With a small classifier's softmax instead of Inception's this is the "classifier IS"; with
    Inception's it is the usual IS.
    """
    p = np.asarray(probs, dtype=np.float64)
    splits = max(1, min(splits, len(p) // 2 or 1))
    scores = []
    for chunk in np.array_split(p, splits):
        py = chunk.mean(axis=0, keepdims=True)
        kl = (chunk * (np.log(chunk + 1e-12) - np.log(py + 1e-12))).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def stacked_modes(digits: np.ndarray, n_modes: int = 1000) -> tuple[int, float]:
    """Modes covered and KL(p_modes || uniform) from per-channel digit predictions ``(N, 3)``.

    A mode is a triple of digits (R, G, B); it counts as covered when at least one sample falls
    in it (the convention of the Stacked-MNIST literature).
    """
    d = np.asarray(digits, dtype=np.int64)
    if d.ndim != 2 or d.shape[1] != 3:
        raise ValueError(f"expected (N, 3) digit predictions, got {d.shape}")
    modes = 100 * d[:, 0] + 10 * d[:, 1] + d[:, 2]
    counts = np.bincount(modes, minlength=n_modes).astype(np.float64)
    p = counts / counts.sum()
    nz = p > 0
    kl = float((p[nz] * np.log(p[nz] * n_modes)).sum())
    return int(nz.sum()), kl
