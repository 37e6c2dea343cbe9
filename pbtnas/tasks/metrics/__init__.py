"""Image-generation metrics that work offline.

* :mod:`.frechet` — Fréchet distance between Gaussians (eigen-decomposition, fast at 2048-d).
* :mod:`.classifier` — FD-clf: a small classifier trained on the real data and cached; its
  penultimate features stand in for Inception's. Never call the result FID.
* :mod:`.scores` — classifier Inception-Score analogue, Stacked-MNIST modes and KL.
* :mod:`.inception` — real FID / IS given a standard Inception weights file.
"""

from pbtnas.tasks.metrics.frechet import FeatureStats, frechet_distance
from pbtnas.tasks.metrics.scores import inception_score, stacked_modes

__all__ = ["FeatureStats", "frechet_distance", "inception_score", "stacked_modes"]
