"""Where derived artefacts (FD-clf classifiers, reference statistics) are cached.

``$PBTNAS_CACHE`` if set, else ``~/.cache/pbtnas``. Writers take a file lock and write
atomically, so several worker processes that need the same classifier train it once.
"""

from __future__ import annotations

import contextlib
import os


def cache_dir(sub: str = "") -> str:
    root = os.environ.get("PBTNAS_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "pbtnas")
    path = os.path.join(root, sub) if sub else root
    os.makedirs(path, exist_ok=True)
    return path


@contextlib.contextmanager
def file_lock(path: str):
    """An exclusive advisory lock on ``path + '.lock'`` (a no-op where fcntl is missing)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX
        yield
        return
    with open(path + ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def atomic_save(obj, path: str) -> None:
    import torch

    from pbtnas.rundir.atomic import atomic_path

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
