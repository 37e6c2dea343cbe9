"""The one way pbtnas writes a file that someone else may read while it is written: to a
temporary name in the same folder, then renamed over the target, so a reader (a resume after a
crash, a worker, a second process filling a cache) sees the old file or the whole new one, never
half of one. Files get the mode a plain ``open(path, "w")`` would give them (``0o666 & ~umask``),
not the 0600 of a temporary file.

A write that the file system refuses (a full disk or quota, a read-only file system, a folder the
user may not write) raises :class:`WriteError`: one line naming the file, which the command line
prints as ``error: ...`` with the ``pbtnas resume`` hint, instead of a traceback. The target is
left as it was (the old file or none), so the run directory stays resumable.

Durability (surviving a power loss, not only a crash) can be moved off the writer's path:
:func:`sync_before_commit` hands a written file to a few background threads that fsync it, and
:func:`wait_for_syncs` (called by the runner just before it writes the manifest, the commit point)
waits for all of them, so the manifest never becomes durable before a file it names."""

from __future__ import annotations

import errno
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pbtnas import faults
from pbtnas.errors import PbtnasError

#: errors of the file system rather than of pbtnas: the user frees space or fixes permissions
DISK_ERRNOS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exhausted",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}


class WriteError(PbtnasError, OSError):
    """The file system refused a write (full disk, quota, read-only, permissions). Also an
    :class:`OSError` (same ``errno`` and ``filename``), so code that tolerates failed writes
    still does."""

    def __init__(self, code: int, path: str | Path, detail: str = ""):
        what = DISK_ERRNOS.get(code, os.strerror(code))
        super().__init__(code, f"cannot write {path}: {what} ({errno.errorcode.get(code, code)}{': ' + detail if detail else ''})", str(path))

    def __str__(self) -> str:
        return str(self.strerror)


@contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """Around any write of ``path``: fires a ``write:...`` fault (``PBTNAS_FAULT``) and turns a
    refusal of the file system into one :class:`WriteError` naming ``path``."""
    try:
        faults.on_write(path)
        yield
    except WriteError:
        raise
    except OSError as exc:
        if exc.errno not in DISK_ERRNOS:
            raise
        raise WriteError(exc.errno, path) from exc


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


_UMASK = _umask()  # read once: os.umask is process-wide and a second thread could see 0 meanwhile
FILE_MODE = 0o666 & ~_UMASK


@contextmanager
def atomic_path(path: str | Path, suffix: str = "", durable: bool = False) -> Iterator[str]:
    """Yield a temporary path next to ``path`` for a library that writes to a path
    (``torch.save``, ``PIL.Image.save``, ``numpy.savez``); it replaces ``path`` when the block
    ends without an exception and is removed otherwise. ``suffix`` keeps an extension that the
    writer insists on (numpy appends ``.npz`` to a name without it); ``durable`` fsyncs the file
    before the rename (for commit points that must survive a power loss, not only a crash)."""
    path = Path(path)
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{suffix}")
        os.close(fd)
        try:
            os.chmod(tmp, FILE_MODE)
            yield tmp
            if durable:
                with open(tmp, "rb") as fh:
                    os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


def atomic_write_bytes(path: str | Path, data: bytes, durable: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (fsynced before the rename unless ``durable=False``)."""
    with atomic_path(path, durable=durable) as tmp, open(tmp, "wb") as fh:
        fh.write(data)


#: background fsyncs at once: enough to keep a disk's queue busy; fsync releases the GIL
SYNC_THREADS = 4
_sync_lock = threading.Lock()
_sync_pool: ThreadPoolExecutor | None = None
_pending: dict[str, Future] = {}  # path -> its latest fsync (earlier ones are awaited in turn)
_done: list[tuple[str, Future]] = []  # replaced in _pending before they were awaited


def _fsync_path(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:  # pruned or replaced meanwhile: no manifest will name this version
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_before_commit(path: str | Path) -> None:
    """Fsync ``path`` in the background; :func:`wait_for_syncs` waits for it. For a file written
    with ``durable=False`` that the next commit point may name (a returned checkpoint) or an
    append-only file written line by line (the journal). A request for a file whose previous
    fsync has not started yet is dropped: that fsync will cover this write too."""
    global _sync_pool
    key = str(path)
    with _sync_lock:
        previous = _pending.get(key)
        if previous is not None and not previous.running() and not previous.done():
            return
        if _sync_pool is None:
            _sync_pool = ThreadPoolExecutor(SYNC_THREADS, thread_name_prefix="pbtnas-fsync")
        if previous is not None:  # still awaited: its error, if any, is reported to it alone
            _done[:] = [(k, f) for k, f in _done if not f.done() or f.exception() is not None]
            _done.append((key, previous))
        _pending[key] = _sync_pool.submit(_fsync_path, key)


def wait_for_syncs() -> None:
    """Wait until every file handed to :func:`sync_before_commit` so far is on the disk; call
    it before writing a commit point. A refused fsync (a full disk found late, an I/O error)
    raises :class:`WriteError` naming the file, so the commit point is not written."""
    with _sync_lock:
        waiting = [*_done, *_pending.items()]
        _done.clear()
        _pending.clear()
    failure: tuple[str, OSError] | None = None
    for key, future in waiting:
        exc = future.exception()
        if isinstance(exc, OSError) and failure is None:
            failure = (key, exc)
        elif exc is not None and failure is None:
            raise exc
    if failure is not None:
        key, exc = failure
        raise WriteError(exc.errno or errno.EIO, key, "fsync") from exc


def atomic_write_json(path: str | Path, data: Any) -> None:
    """Write ``data`` as indented JSON (numpy scalars and paths allowed) atomically."""
    atomic_write_bytes(path, (json.dumps(data, indent=2, default=_json_default) + "\n").encode())


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
