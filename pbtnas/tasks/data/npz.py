"""A user's own images in a ``.npz`` file, read the same way by the classification and GAN tasks.

The file holds an array ``X`` of images, shaped ``(N, H, W)``, ``(N, C, H, W)`` or channels-last
``(N, H, W, C)``, as 8-bit pixels (integers 0..255) or values in ``[0, 1]`` (any other range is
stated with ``task.pixel_max``, see :func:`scale_pixels`), and, where the task needs or
can use them, labels ``y`` of any kind (numbers or strings), one per image. The file is read with
``allow_pickle=False``: it cannot run code.
"""

from __future__ import annotations

import functools
import math
import os

import numpy as np

from pbtnas.errors import DataError

LAYOUTS = ("auto", "nchw", "nhwc")
#: the ``task.layout`` option of every task that reads these files, as ``pbtnas space`` shows it
LAYOUT_DOC = "npz image layout: 'auto' (channels last when the last axis has 1, 3 or 4 entries and the second does not), 'nchw' or 'nhwc'"
#: the ``task.pixel_max`` option of every task that reads these files
PIXEL_MAX_DOC = (
    "npz pixel value of white: X is divided by it (0: values in [0, 1] as they are, integers 0..255 "
    "divided by 255, anything else refused naming its range; e.g. 16 for scikit-learn digits)"
)


def read_npz_images(path: str, layout: str = "auto", labels: str = "required", pixel_max: float = 0.0) -> tuple[np.ndarray, np.ndarray | None]:
    """``(X as float32 (N, C, H, W) in [0, 1], y or None)`` of a user's ``.npz`` file.

    ``labels`` is ``"required"`` (no ``y`` is an error) or ``"optional"`` (``None`` without one).
    Pixels are scaled by :func:`scale_pixels` (``pixel_max`` is ``task.pixel_max``); with
    ``layout="auto"`` the channels come last when the last axis is 1, 3 or 4 long and the second
    is not. Every problem is one :class:`DataError` naming the file.
    """
    if labels not in ("required", "optional"):
        raise ValueError(f"labels must be 'required' or 'optional', got {labels!r}")
    if layout not in LAYOUTS:
        raise DataError(f"task.layout must be auto, nchw or nhwc, got {layout!r}")
    if not (isinstance(pixel_max, (int, float)) and math.isfinite(pixel_max) and pixel_max >= 0):
        raise DataError(f"task.pixel_max must be a finite number >= 0 (0: decided from the data), got {pixel_max!r}")
    if path and os.path.isdir(path):
        raise DataError(f"task.data_path {path!r} is a folder; dataset 'npz' needs a .npz file")
    if not path or not os.path.isfile(path):
        need = "X and y" if labels == "required" else "X (and, optionally, labels y)"
        raise DataError(f"task.data_path {path!r} does not exist (dataset 'npz' needs a .npz file with {need})")
    stat = os.stat(path)
    x, y = _read(os.path.abspath(path), stat.st_mtime_ns, stat.st_size, layout, float(pixel_max))
    if y is None and labels == "required":
        raise DataError(f"task.data_path {path!r} is not a .npz file with arrays 'X' and 'y': it has no 'y'")
    return x, y


@functools.lru_cache(maxsize=2)
def _read(path: str, mtime_ns: int, size: int, layout: str, pixel_max: float) -> tuple[np.ndarray, np.ndarray | None]:
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
    if np.issubdtype(x.dtype, np.complexfloating):  # casting would drop the imaginary part with only a warning
        raise DataError(f"{path}: X holds complex numbers (dtype {x.dtype}); pixels are real: store abs(X) or X.real if that is what you mean")
    if y is not None:
        check_labels(y, path)
    stored = x.dtype
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise DataError(f"{path}: X holds NaN or infinite values")
    x = scale_pixels(x, stored, pixel_max, path)
    x.setflags(write=False)  # shared by every caller through the cache
    return x, y


#: the largest whole number a float64 holds exactly: labels beyond it may merge or split classes
_EXACT_FLOAT_INT = 2**53


def check_labels(y: np.ndarray, path: str) -> None:
    """Labels name classes: integers, booleans or strings. Floats pass only when every one is a
    whole number that a float holds exactly (0.0/1.0 from a data frame); a fractional, huge or
    NaN label is refused, as continuous targets (a regression data set) would otherwise become
    one class per image and splits too small to train on."""
    if y.dtype == np.bool_ or np.issubdtype(y.dtype, np.integer) or y.dtype.kind in "US":
        return
    if np.issubdtype(y.dtype, np.floating):
        values = y.astype(np.float64)
        bad = ~np.isfinite(values) | (values != np.round(values)) | (np.abs(values) > _EXACT_FLOAT_INT)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{path}: y holds {int(bad.sum())} label(s) that are not class names (y[{first}] = {float(values[first])!r}, dtype {y.dtype}): "
                f"labels must be integers or strings naming classes (whole-number floats up to 2**53 are accepted)"
            )
        return
    raise DataError(f"{path}: y must hold class labels (integers or strings), got dtype {y.dtype}")


def scale_pixels(x: np.ndarray, stored: np.dtype, pixel_max: float, path: str) -> np.ndarray:
    """``x`` (float32, as read) in ``[0, 1]``, or one :class:`DataError` naming the range found.

    With ``pixel_max`` (``task.pixel_max`` > 0) X is divided by it, and must lie in
    ``[0, pixel_max]``. Without it: values in ``[0, 1]`` are used as they are; integers 0..255
    are 8-bit pixels, divided by 255 (stored as an integer type, or as whole-number floats
    reaching 255: 8-bit images saved with ``astype(float32)``). Anything else is refused rather
    than guessed: scikit-learn's digits (0..16 as floats) divided by 255 would train on images
    sixteen times too dark without a word.
    """
    lo, hi = float(x.min()) + 0.0, float(x.max()) + 0.0  # + 0.0: -0.0 reads as 0
    found = f"X holds values from {lo:g} to {hi:g} (stored as {stored})"
    if pixel_max:
        if lo < 0 or hi > pixel_max:
            raise DataError(f"{path}: {found}, outside [0, task.pixel_max={pixel_max:g}]: state the value of white of these images")
        return x / np.float32(pixel_max)
    if lo >= 0.0 and hi <= 1.0:
        return x
    whole = np.issubdtype(stored, np.integer) or (hi == 255.0 and bool(np.all(x == np.round(x))))
    if whole and lo >= 0.0 and hi <= 255.0:  # 8-bit pixels: 0..255 -> 0..1
        return x / 255.0
    if lo < 0:
        how = "pixels must not be negative: map X to [0, 1] (e.g. (X + 1) / 2 for images in [-1, 1])"
    else:
        how = f"state the value of white with task.pixel_max (e.g. task.pixel_max={hi:g})"
    raise DataError(f"{path}: {found}; pbtnas takes values in [0, 1] as they are and integers 0..255 as 8-bit pixels: {how}")
