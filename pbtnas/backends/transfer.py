"""Where member states travel between the driver and remote workers when the user names a
storage location (``--storage``): a folder every machine mounts, or any fsspec URL
(``s3://bucket/prefix``, ``gs://...``, ``file:///shared/pbtnas``).

States never go over ssh or rsync. Writes go to a temporary name and are renamed (folders) or
written whole in one ``put`` (object stores), so a reader never sees half a checkpoint.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from pbtnas.errors import MissingDependencyError, PbtnasError
from pbtnas.rundir.atomic import atomic_write_bytes


class Storage:
    """A flat key -> bytes store under one root. Keys use ``/`` as separator."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def put(self, key: str, data: bytes) -> None:
        raise NotImplementedError

    def get(self, key: str) -> bytes:
        raise NotImplementedError

    def delete(self, key: str) -> None:
        raise NotImplementedError

    def delete_prefix(self, prefix: str) -> None:
        raise NotImplementedError

    def spec(self) -> str:
        """What a remote worker needs to open the same storage (the URL itself)."""
        return self.url


class FolderStorage(Storage):
    """A plain folder (local disk, NFS, any shared mount)."""

    def _path(self, key: str) -> Path:
        return Path(self.url) / key

    def put(self, key: str, data: bytes) -> None:
        atomic_write_bytes(self._path(key), data, durable=False)

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            pass

    def delete_prefix(self, prefix: str) -> None:
        import shutil

        shutil.rmtree(self._path(prefix), ignore_errors=True)


class FsspecStorage(Storage):
    """Any fsspec URL. Object stores write a whole object per ``put``, which is atomic there."""

    def __init__(self, url: str):
        super().__init__(url)
        try:
            import fsspec
        except ImportError as exc:  # pragma: no cover - fsspec ships with ray[default]
            raise MissingDependencyError("storage URLs need fsspec: pip install fsspec") from exc
        try:
            self.fs, self.root = fsspec.core.url_to_fs(self.url)
        except (ImportError, ValueError) as exc:
            raise PbtnasError(f"storage {url!r} cannot be opened: {exc}") from None

    def _path(self, key: str) -> str:
        return f"{self.root.rstrip('/')}/{key}"

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        parent = path.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        self.fs.pipe_file(path, data)

    def get(self, key: str) -> bytes:
        return self.fs.cat_file(self._path(key))

    def delete(self, key: str) -> None:
        try:
            self.fs.rm_file(self._path(key))
        except FileNotFoundError:
            pass

    def delete_prefix(self, prefix: str) -> None:
        try:
            self.fs.rm(self._path(prefix), recursive=True)
        except FileNotFoundError:
            pass


def open_storage(url: str) -> Storage:
    """A plain path is a folder; ``scheme://...`` goes through fsspec (``file://`` included)."""
    if "://" in url:
        return FsspecStorage(url)
    return FolderStorage(os.path.abspath(os.path.expanduser(url)))


def check_writable(storage: Storage) -> str:
    """Write, read back and delete a probe object; return its key (kept for a remote read check).

    Raises :class:`PbtnasError` naming the location when any of it fails.
    """
    key = f"_probe/{uuid.uuid4().hex}"
    payload = b"pbtnas storage probe"
    try:
        storage.put(key, payload)
        if storage.get(key) != payload:
            raise OSError("read back different bytes")
    except Exception as exc:  # any backend error means the same to the user: not usable
        raise PbtnasError(
            f"storage {storage.url!r} is not writable ({type(exc).__name__}: {exc}); name a folder every Ray node can write, or an fsspec URL"
        ) from None
    return key
