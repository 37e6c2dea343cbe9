"""A restricted unpickler for data files that hold plain numpy arrays, dicts and lists.

Pickles from wheels and from downloaded data sets can run arbitrary code when loaded with
:func:`pickle.load`; this one resolves only the few globals numpy needs to rebuild an array.
"""

from __future__ import annotations

import io
import pickle
from typing import Any, BinaryIO

from pbtnas.errors import DataError

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("builtins", "bytes"),
    ("_codecs", "encode"),  # protocol-2 pickles written by Python 2 encode bytes this way
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a data pickle")


def safe_load(fh: BinaryIO | bytes, where: str, encoding: str = "ASCII") -> Any:
    """Unpickle ``fh`` allowing only numpy arrays and builtin containers; name ``where`` on failure."""
    if isinstance(fh, (bytes, bytearray)):
        fh = io.BytesIO(fh)
    try:
        return _RestrictedUnpickler(fh, encoding=encoding).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise DataError(f"{where} is not a readable data pickle: {exc}") from exc
