"""A user's own images in a ``.npz`` file, read the same way by the classification and GAN tasks.

The file holds an array ``X`` of images, shaped ``(N, H, W)``, ``(N, C, H, W)`` or channels-last
``(N, H, W, C)``, as 8-bit pixels (0..255) or floats in ``[0, 1]``, and, where the task needs or
can use them, labels ``y`` of any kind (numbers or strings), one per image. The file is read with
``allow_pickle=False``: it cannot run code.
"""

from __future__ import annotations

import functools
import os

import numpy as np

from pbtnas.errors import DataError

LAYOUTS = ("auto", "nchw", "nhwc")
#: the ``task.layout`` option of every task that reads these files, as ``pbtnas space`` shows it
LAYOUT_DOC = "npz image layout: 'auto' (channels last when the last axis has 1, 3 or 4 entries and the second does not), 'nchw' or 'nhwc'"


def read_npz_images(path: str, layout: str = "auto", labels: str = "required") -> tuple[np.ndarray, np.ndarray | None]:
    """``(X as float32 (N, C, H, W) in [0, 1], y or None)`` of a user's ``.npz`` file.

    ``labels`` is ``"required"`` (no ``y`` is an error) or ``"optional"`` (``None`` without one).
    Pixels are used as they are when ``X``'s maximum is at most 1, else divided by 255; with
    ``layout="auto"`` the channels come last when the last axis is 1, 3 or 4 long and the second
    is not. Every problem is one :class:`DataError` naming the file.
    """
    if labels not in ("required", "optional"):
        raise ValueError(f"labels must be 'required' or 'optional', got {labels!r}")
    if layout not in LAYOUTS:
        raise DataError(f"task.layout must be auto, nchw or nhwc, got {layout!r}")
    if path and os.path.isdir(path):
        raise DataError(f"task.data_path {path!r} is a folder; dataset 'npz' needs a .npz file")
    if not path or not os.path.isfile(path):
        need = "X and y" if labels == "required" else "X (and, optionally, labels y)"
        raise DataError(f"task.data_path {path!r} does not exist (dataset 'npz' needs a .npz file with {need})")
    stat = os.stat(path)
    x, y = _read(os.path.abspath(path), stat.st_mtime_ns, stat.st_size, layout)
    if y is None and labels == "required":
        raise DataError(f"task.data_path {path!r} is not a .npz file with arrays 'X' and 'y': it has no 'y'")
    return x, y


@functools.lru_cache(maxsize=2)
def _read(path: str, mtime_ns: int, size: int, layout: str) -> tuple[np.ndarray, np.ndarray | None]:
    # Keyed by modification time and size as well, so that a file rewritten in place is read again.
    del mtime_ns, size
    try:
        with np.load(path, allow_pickle=False) as f:
            if "X" not in f.files:
                raise KeyError(f"no array 'X' (it has {sorted(f.files)})")
            x = f["X"]
            y = f["y"] if "y" in f.files else None
    except (KeyError, ValueError, OSError, EOFError) as exc:
        raise DataError(f"task.data_path {path!r} is not a .npz file with arrays 'X' and 'y': {exc}") from None
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or (y is not None and (y.ndim != 1 or len(x) != len(y))):
        got = f"X {x.shape}" + (f" and y {y.shape}" if y is not None else "")
        raise DataError(f"{path}: X must be (N,H,W), (N,C,H,W) or (N,H,W,C) with one label per image in y (N,), got {got}")
    if len(x) == 0:
        raise DataError(f"{path}: X holds no images")
    if layout == "nhwc" or (layout == "auto" and x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4)):
        x = np.moveaxis(x, -1, 1)
    if not np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_:
        raise DataError(f"{path}: X must hold numbers, got dtype {x.dtype}")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise DataError(f"{path}: X holds NaN or infinite values")
    if x.max() > 1.0:  # 8-bit pixels: 0..255 -> 0..1
        x = x / 255.0
    x.setflags(write=False)  # shared by every caller through the cache
    return x, y
