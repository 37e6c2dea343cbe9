"""The run directory: resolved config, append-only journal, atomic checkpoints, manifest, best
network and summary. It records; it decides nothing.

Layout::

    RUN_DIR/
      config.yaml           resolved config (what `pbtnas resume` reads)
      journal.jsonl         one JSON event per line, append-only
      population.json       manifest of the last finished step (the commit point for resume)
      checkpoints/step_0003/uid0011.pt   member checkpoints (genome travels with the weights)
      best/member.pt, best/best.json     best network seen so far (best-ever)
      samples/              per-step images of the best member (tasks that draw)
      final/member.pt       the network the run delivers (a copy of the selected checkpoint)
      summary.json          written when the run finishes
      deliveries/steps_0004/  summary.json, member.pt of an earlier delivery (a finished run given more steps)
      .pbtnas.lock          held (flock) by the one process writing the run; holds its PID

One writer per run directory: ``run``/``resume`` hold ``.pbtnas.lock`` for the run's lifetime; a
second process is refused with the holder's PID; a lock left by a killed process is released by
the kernel and simply taken over. The manifest records every checkpoint it needs with its
SHA-256, size, uid and step, which ``resume``, ``export`` and ``soup`` verify before reading one.

A run directory is data that people share, so nothing in it may lead elsewhere: every path a
run's own files record is resolved by :meth:`RunStore.resolve`, which refuses absolute paths,
``..`` and symbolic links, and the files pbtnas reads or appends to (journal, manifest, summary,
best record, soups) are refused when they are symbolic links (:meth:`RunStore.own_file`).
Checkpoints load with
``torch.load(weights_only=True)``: tensors, numbers, strings, containers and plain numpy arrays
only, so a crafted file cannot run code.
"""

from __future__ import annotations

import collections
import hashlib
import io
import json
import os
import pickle
import shutil
import socket
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from pbtnas.errors import CheckpointError, PbtnasError, RunFileError
from pbtnas.rundir.atomic import FILE_MODE, _json_default, atomic_write_bytes, atomic_write_json, sync_before_commit, writing
from pbtnas.rundir.checks import BEST_FILE, FINAL_FILE, check_manifest, check_summary
from pbtnas.rundir.records import (
    BestRecord,
    JournalRepaired,
    Manifest,
    Record,
    Summary,
    UnknownEvent,
    build_record,
    journal_problem,
    record_from_json,
)
from pbtnas.search.space import Genome

if TYPE_CHECKING:  # torch is imported where a checkpoint is read or written: viewing a run needs none
    from pbtnas.search.state import MemberState

CHECKPOINT_FORMAT = "pbtnas-member"
CHECKPOINT_VERSION = 1
MANIFEST_VERSION = 1
LOCK_NAME = ".pbtnas.lock"


class RunLockedError(PbtnasError):
    """Another live process writes this run directory."""


def _is_plain_numpy(value: object) -> bool:
    import numpy as np

    if isinstance(value, (np.ndarray, np.generic)):
        return value.dtype.kind in "biuf"  # what _safe_globals lets a checkpoint load
    return False


def _plain_types() -> tuple:
    import torch

    return (bool, int, float, complex, str, bytes, torch.Size, torch.dtype, torch.device)


def check_plain_data(value: object, where: str) -> None:
    """Raise :class:`TaskContractError` naming the first thing under ``value`` that a checkpoint
    cannot hold: checkpoints load with ``weights_only=True``, which reads tensors, numbers,
    strings, numeric numpy arrays and lists, tuples and dicts of these, and nothing else. Checked
    when a member is saved, so the task's author hears it there rather than from a refused load."""
    import torch

    from pbtnas.errors import TaskContractError

    plain_types = _plain_types()
    stack: list[tuple[object, str]] = [(value, where)]
    while stack:
        item, path = stack.pop()
        # exact types: a subclass (an IntEnum, a str subclass) is a global that will not load
        if item is None or type(item) in plain_types or isinstance(item, torch.Tensor):
            continue
        if type(item) in (list, tuple, set):
            assert isinstance(item, (list, tuple, set))
            stack.extend((element, f"{path}[{index}]") for index, element in enumerate(item))
        elif type(item) in (dict, collections.OrderedDict):
            assert isinstance(item, dict)
            for key, element in item.items():
                if key is not None and type(key) not in (str, int, float, bool):
                    raise TaskContractError(f"{path} has a key of type {type(key).__name__} ({key!r}); checkpoint keys are strings or numbers")
                stack.append((element, f"{path}[{key!r}]"))
        elif not _is_plain_numpy(item):
            if hasattr(item, "dtype") and not isinstance(item, type):
                kind = f"a numpy array of dtype {item.dtype}"
            else:
                kind = f"a {type(item).__module__}.{type(item).__qualname__}"
            raise TaskContractError(
                f"{path} holds {kind}, which a checkpoint cannot hold: keep only tensors, numbers, strings, "
                "numeric numpy arrays and lists/tuples/dicts of these (checkpoints load with weights_only=True)"
            )


def save_member(path: str | Path, genome: Genome, state: MemberState, uid: int, meta: dict | None = None, durable: bool = True) -> None:
    """Atomically write one member's checkpoint: genome, state and metadata in one file.
    ``durable=False`` (the driver's children and refreshed members) fsyncs it in the background
    instead; the next commit point waits for it (:func:`~pbtnas.rundir.atomic.wait_for_syncs`)."""
    import torch

    check_plain_data(state.extra, "member.extra")
    buffer = io.BytesIO()
    torch.save(
        {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "uid": uid,
            "genome": dict(genome),
            "state": state.to_dict(),
            "meta": meta or {},
        },
        buffer,
    )
    atomic_write_bytes(Path(path), buffer.getvalue(), durable=durable)
    if not durable:
        sync_before_commit(path)


def _safe_globals() -> list:
    """The only non-torch types a checkpoint may hold: plain numpy arrays and scalars (RL replay
    buffers, RNG states). Nothing here can run code when unpickled."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy ships with torch
        return []
    try:
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct, scalar  # type: ignore[no-redef]
    dtypes = [type(np.dtype(t)) for t in ("b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8")]
    return [_reconstruct, scalar, np.ndarray, np.dtype, *dtypes]


def load_member(path: str | Path) -> tuple[Genome, MemberState, dict]:
    """Read a checkpoint; any damage becomes one :class:`CheckpointError` naming the file.

    Loaded with ``weights_only=True`` (and numpy arrays allowed): a file crafted to run code when
    unpickled is refused, never executed."""
    import torch

    from pbtnas.search.state import MemberState

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with torch.serialization.safe_globals(_safe_globals()):
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "Weights only load failed" in text or "Unsupported global" in text:
            import re

            found = re.search(r"GLOBAL ([\w.]+)", text)
            what = found.group(1) if found else "an object that is not plain data"
            raise CheckpointError(
                f"checkpoint {path} holds {what}, which a pbtnas checkpoint never does: refused "
                "(loading it could run code); it is damaged or was crafted"
            ) from None
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated (UnpicklingError: {_first(exc)})") from None
    except (EOFError, RuntimeError, zipfile.BadZipFile, ValueError, OSError, TypeError, AttributeError, KeyError, IndexError) as exc:
        detail = "not a torch zip archive" if "weights_only" in str(exc) else f"{type(exc).__name__}: {_first(exc)}"
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({detail})") from None
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a pbtnas member checkpoint")
    if data.get("version", 0) > CHECKPOINT_VERSION:
        raise CheckpointError(f"{path} was written by a newer pbtnas (format version {data['version']})")
    if not isinstance(data.get("state"), dict) or not isinstance(data.get("genome"), dict):
        raise CheckpointError(f"{path} is not a pbtnas member checkpoint (no genome or state)")
    return data["genome"], MemberState.from_dict(data["state"]), {"uid": data.get("uid"), **data.get("meta", {})}


def mismatch(path: Path, record: dict) -> str | None:
    """How ``path`` differs from the checkpoint a manifest recorded (size, then SHA-256), or None."""
    size = path.stat().st_size
    if size != record.get("bytes"):
        return "it is empty" if size == 0 else f"it has {size} bytes, {record.get('bytes')} were written"
    if file_sha256(path) != record.get("sha256"):
        return "its content differs from what was written (checksum mismatch)"
    return None


def _first(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else ""


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def damaged_best(store, manifest: dict) -> str | None:
    """What is wrong with ``best/member.pt``, or None when it is the file the manifest committed
    (or a best network written after that commit, by a step a resume redoes: then it is a copy
    of one of the run's checkpoints). A manifest of an older pbtnas (no checksum) is checked by
    reading the file."""
    if manifest.get("best") is None:
        return None
    try:
        path = store.resolve(BEST_FILE, "population.json")
    except RunFileError:
        return "it (or the best folder) is a symbolic link"
    if not path.is_file():
        return "it is missing"
    record = (manifest.get("checkpoints") or {}).get(BEST_FILE)
    if record is None:
        try:
            load_member(path)
        except CheckpointError as exc:
            return str(exc).replace(f"checkpoint {path} ", "").replace(f"{path} ", "")
        return None
    size = path.stat().st_size
    digest = file_sha256(path) if size == record.get("bytes") else None
    if digest == record.get("sha256"):
        return None
    if _copy_of_a_checkpoint(store, path, size, digest):
        return None
    if size == 0:
        return "it is empty"
    if size != record.get("bytes"):
        return f"it has {size} bytes, {record.get('bytes')} were written"
    return "its content differs from what was written (checksum mismatch)"


def _copy_of_a_checkpoint(store, path: Path, size: int, digest: str | None) -> bool:
    """Whether ``path`` has the content of a member checkpoint of the run (a best network saved
    after the last commit is a byte copy of the checkpoint its member's step wrote)."""
    base = store.root / "checkpoints"
    if not base.is_dir():
        return False
    for candidate in base.rglob("*.pt"):
        try:
            if candidate.stat().st_size != size:
                continue
            digest = digest or file_sha256(path)
            if file_sha256(candidate) == digest:
                return True
        except OSError:
            continue
    return False


def _voided_by(event: dict, resumed: dict) -> bool:
    """Whether a journal event was undone by a later resume.

    The ``run_resumed`` event says what is redone, whatever the schedule: per slot, the steps at
    or after that slot's committed progress when it names ``slot_steps`` (asynchronous runs),
    else every step from ``from_step`` (synchronous runs redo whole steps; bohb names a
    ``from_step`` past every step, voiding nothing).
    """
    step = event.get("step")
    if step is None or event.get("event") == "run_started":
        return False
    slot_steps = resumed.get("slot_steps")
    if slot_steps is not None and event.get("slot") is not None:
        slot = event["slot"]
        return 0 <= slot < len(slot_steps) and step >= slot_steps[slot]
    return step >= resumed.get("from_step", 0)


def _void_cut_reopen(kept: list[dict]) -> list[dict]:
    """What an earlier attempt to reopen a finished run for more steps journaled before it was
    cut (its ``run_extended`` and the events of the steps it made up), dropped when the reopen is
    done again: everything after the last ``run_finished`` that has a step, or is such an event."""
    last = max((i for i, e in enumerate(kept) if e.get("event") == "run_finished"), default=None)
    if last is None:
        return kept
    tail = [e for e in kept[last + 1 :] if e.get("step") is None and e.get("event") != "run_extended"]
    return kept[: last + 1] + tail


def _strict(kind, data: dict, what: str):
    """``data`` as the record type ``kind``, refusing unknown or missing keys (a bug in the
    writer, caught before anything reaches the disk)."""
    return kind.from_dict(data, strict=True, where=what)


def _read_holder(fd: int) -> dict:
    try:
        text = os.pread(fd, 4096, 0).decode(errors="replace").strip()
        return json.loads(text) if text else {}
    except (OSError, ValueError):
        return {}


def _alive(holder: dict) -> bool:
    """Whether a lock record names a live process (on another host: assumed so)."""
    pid = holder.get("pid") if holder else None
    if not isinstance(pid, int):
        return False
    if holder.get("host") != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _link_below(root: Path, relative: Path) -> Path | None:
    """The first path from ``root`` down to ``root / relative`` that is a symbolic link, or None
    (``root`` itself may be a link: the user chose it)."""
    current = root
    for part in relative.parts:
        current = current / part
        if os.path.islink(current):
            return current
    return None


def _journal_object(line: bytes) -> dict | None:
    """One journal line as its object, or None when it is damaged: not UTF-8, not JSON, not an
    object, or a field of a known event holding a value of the wrong kind (a string fitness)."""
    try:
        data = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict) or journal_problem(data) is not None:
        return None
    return data


def _step_of(rel: str) -> int | None:
    for part in Path(rel).parts:
        if part.startswith("step_") and part[5:].isdigit():
            return int(part[5:])
    return None


class RunStore:
    """Reads and writes one run directory (see module docstring)."""

    def __init__(self, root: str | Path):
        # Absolute, so that checkpoint paths handed to workers (absolute) and the relative paths
        # kept in the manifest always agree, whatever directory the run was started from; with
        # ".." taken out (``--out ../run``), as the paths it is compared with have them.
        self.root = Path(os.path.abspath(root))
        self._lock_fd: int | None = None
        self._hashes: dict[str, tuple[tuple, str]] = {}  # relative path -> (stat signature, sha256)
        self._journal_checked = False
        #: line numbers of the damaged journal lines the last :meth:`events` skipped
        self.skipped_lines: list[int] = []

    # -- paths --------------------------------------------------------------------------------
    @property
    def journal_path(self) -> Path:
        return self.root / "journal.jsonl"

    @property
    def manifest_path(self) -> Path:
        return self.root / "population.json"

    @property
    def config_path(self) -> Path:
        return self.root / "config.yaml"

    @property
    def best_dir(self) -> Path:
        return self.root / "best"

    def step_dir(self, step: int) -> Path:
        return self.root / "checkpoints" / f"step_{step:04d}"

    def member_path(self, step: int, uid: int, suffix: str = "") -> Path:
        return self.step_dir(step) / f"uid{uid:04d}{suffix}.pt"

    def newest_member_checkpoints(self) -> dict[int, tuple[int, str]]:
        """uid -> (step, checkpoint relative to the run directory) of the newest population
        checkpoint of every member this run directory still holds (the files
        :meth:`member_path` names; other files in the step folders are left out)."""
        found: dict[int, tuple[int, str]] = {}
        base = self.root / "checkpoints"
        if not base.is_dir():
            return found
        for folder in sorted(base.glob("step_*")):
            step = folder.name[len("step_") :]
            if not step.isdigit():
                continue
            for file in folder.glob("uid*.pt"):
                uid = file.stem[len("uid") :]
                if uid.isdigit() and file.is_file() and self.member_path(int(step), int(uid)) == file:
                    found[int(uid)] = (int(step), self.relative(file))  # folders sorted: the newest wins
        return found

    def relative(self, path: Path) -> str:
        return str(Path(path).relative_to(self.root))

    def absolute(self, relative: str | None) -> Path:
        """The path of a file recorded relative to the run directory (a member's checkpoint in
        ``population.json``), checked by :meth:`resolve`."""
        if relative is None:
            raise CheckpointError(f"{self.root}: a member has no checkpoint yet (the run has not trained its first step)")
        return self.resolve(relative, "population.json")

    def resolve(self, relative: object, recorded_in: str) -> Path:
        """The path of a file that the run's own file ``recorded_in`` names relative to the run
        directory. Refused with one :class:`RunFileError` naming that file and the path when it
        is not a relative path, climbs out with ``..``, or passes through a symbolic link: a
        shared run directory must never make pbtnas read or write another run's or the system's
        files. The one place every recorded path goes through."""
        where = self.root / recorded_in
        if not isinstance(relative, str) or not relative.strip():
            raise RunFileError(f"{where} records {relative!r} where a file path was expected: the file is damaged; restore it from a copy")
        rel = Path(relative)
        if rel.is_absolute() or ".." in rel.parts:
            raise RunFileError(
                f"{where} records the path {relative!r}, which leads outside the run directory: refused "
                "(the file is damaged or was crafted); restore it from a copy"
            )
        link = _link_below(self.root, rel)
        if link is not None:
            raise RunFileError(
                f"{where} records the path {relative!r}, which passes through the symbolic link {link}: refused "
                "(a run directory holds only its own files); replace the link with the real file or folder"
            )
        return self.root / rel

    def own_file(self, name: str) -> Path:
        """``root/name``, one of the files pbtnas itself reads or appends to (journal, manifest,
        summary, best record, soups), refused with one :class:`RunFileError` when it or a folder
        on the way is a symbolic link: appending to a linked journal would write into the file it
        points to, reading a linked summary would show another file as this run's."""
        link = _link_below(self.root, Path(name))
        if link is not None:
            raise RunFileError(
                f"{link} is a symbolic link: refused (a run directory holds only its own files); "
                "replace it with the run's own file, or restore the run directory from a copy"
            )
        return self.root / name

    def read_json(self, name: str, remedy: str) -> Any:
        """The JSON content of the run's own file ``name`` (None when it does not exist); a
        damaged one (truncated, not UTF-8, not JSON, a symbolic link) is one
        :class:`RunFileError` naming it and ending with ``remedy``."""
        path = self.own_file(name)
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_bytes().decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise RunFileError(f"{path} is damaged (byte {exc.start} is not UTF-8 text); {remedy}") from None
        except json.JSONDecodeError as exc:
            raise RunFileError(f"{path} is damaged (not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}); {remedy}") from None
        except OSError as exc:
            raise RunFileError(f"{path} cannot be read ({exc.strerror or exc}); {remedy}") from None

    # -- one writer -------------------------------------------------------------------------
    @property
    def lock_path(self) -> Path:
        return self.root / LOCK_NAME

    def lock(self) -> dict | None:
        """Become the one process writing this run directory, until :meth:`unlock` or exit.

        Raises :class:`RunLockedError` naming the PID that holds it. A lock left by a process that
        was killed is free again (the kernel drops it with the process) and is taken over; the
        dead holder's record is returned (else None)."""
        import fcntl

        if self._lock_fd is not None:
            return None
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            raise PbtnasError(f"cannot write in {self.root} ({exc.strerror or exc}); choose a folder you may write") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read_holder(fd)
            deadline = time.monotonic() + 2.0
            while not _alive(holder) and time.monotonic() < deadline:  # it has just locked: its PID follows
                time.sleep(0.05)
                holder = _read_holder(fd)
            os.close(fd)
            who = (
                f"PID {holder.get('pid')} on {holder.get('host')}, since {holder.get('since')}"
                if holder
                else "a process that has not written its PID yet"
            )
            raise RunLockedError(
                f"{self.root} is in use by another pbtnas process ({who}); wait for it to end "
                "or stop it (one process at a time writes a run directory)"
            ) from None
        stale = _read_holder(fd)
        record = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        self._lock_fd = fd
        return stale or None

    def unlock(self) -> None:
        """Give the run directory up (a clean end leaves an empty lock file)."""
        import fcntl

        fd, self._lock_fd = self._lock_fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    @property
    def locked(self) -> bool:
        return self._lock_fd is not None

    def writer(self) -> dict | None:
        """The process writing this run directory now (``pid``, ``host``, ``since``), or None
        when none holds its lock (the run finished, was stopped or was killed). Takes no lock."""
        import fcntl

        if self._lock_fd is not None:
            return _read_holder(self._lock_fd)
        try:
            fd = os.open(self.lock_path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:  # never locked (or unreadable): nobody we can see writes it
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:  # held: a live writer
                return _read_holder(fd) or {"pid": None, "host": None, "since": None}
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def __del__(self):  # a runner dropped after a failed start gives its lock up
        try:
            self.unlock()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    # -- creation -----------------------------------------------------------------------------
    def create(self, config: dict) -> None:
        """Start a new run directory (taking its lock); refuses to overwrite a directory holding
        another run. What a start that never committed left behind (a kill between
        ``config.yaml`` and ``population.json``, a run that failed before its first member
        trained) holds no work and is replaced."""
        self.lock()
        try:
            if self.manifest_path.exists() or self.journal_path.exists():
                if not self.holds_no_work():
                    raise PbtnasError(f"{self.root} already holds a run; continue it with 'pbtnas resume {self.root}' or choose another --out")
                self.clear_uncommitted()
            import yaml

            atomic_write_bytes(self.config_path, yaml.safe_dump(config, sort_keys=False).encode())
        except BaseException:
            self.unlock()
            raise

    def holds_no_work(self) -> bool:
        """True when the directory holds a start that trained nothing: no manifest (the start was
        cut before its commit), or a manifest of no finished step and no checkpoint written."""
        if (self.root / "summary.json").exists():
            return False
        if self.manifest_path.exists():
            try:
                with open(self.manifest_path) as fh:
                    manifest = json.load(fh)
            except (OSError, ValueError):
                return False
            if (
                not isinstance(manifest, dict)
                or manifest.get("step_done", 0) != -1
                or any((m or {}).get("checkpoint") for m in manifest.get("members", []) if isinstance(m, dict))
            ):
                return False
        base = self.root / "checkpoints"
        return not (base.is_dir() and any(p.is_file() for p in base.rglob("*")))

    def clear_uncommitted(self) -> None:
        """Remove what a start that trained nothing wrote (see :meth:`holds_no_work`)."""
        for name in ("population.json", "journal.jsonl", "config.yaml"):
            try:
                (self.root / name).unlink()
            except FileNotFoundError:
                pass
        for name in ("checkpoints", "best", "samples"):
            shutil.rmtree(self.root / name, ignore_errors=True)

    def read_config(self) -> dict:
        import yaml

        if not self.own_file("config.yaml").is_file():
            raise PbtnasError(f"{self.root} is not a pbtnas run directory (no config.yaml)")
        try:
            with open(self.config_path) as fh:
                data = yaml.safe_load(fh)
        except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
            raise PbtnasError(f"{self.config_path} cannot be read: {str(exc).splitlines()[0]}") from None
        if not isinstance(data, dict):
            raise PbtnasError(f"{self.config_path} is not a pbtnas config (a mapping of keys was expected)")
        return data

    # -- journal ------------------------------------------------------------------------------
    def append(self, record: Record) -> dict:
        """Write one journal event, a record of :mod:`pbtnas.rundir.records` (``MemberTrained(...)``;
        mypy checks its fields where it is built). Its values are checked once more here, before
        anything is written (:class:`~pbtnas.rundir.records.JournalSchemaError`: a value of the
        wrong kind that mypy could not see); ``time`` is set to now. Returns the line's object."""
        if not isinstance(record, Record) or isinstance(record, UnknownEvent):
            raise TypeError(f"RunStore.append takes a journal record of pbtnas.rundir.records, not {type(record).__name__}")
        record = build_record(record.event, record.to_dict(), round(time.time(), 3))
        if not self._journal_checked:
            self._journal_checked = True
            cut = self.cut_torn_line()
            if cut:
                self.append(JournalRepaired(torn_bytes=cut))
        data = record.to_json()
        line = (json.dumps(data, default=_json_default) + "\n").encode()
        # One write() of the whole line with O_APPEND: a crash leaves the line whole or torn at
        # the end (cut by cut_torn_line), never interleaved. The fsync runs in the background
        # and the runner waits for it before the next manifest, so the journal always reaches
        # the disk ahead of the commit point that relies on it.
        path = self.own_file("journal.jsonl")  # a linked journal: refused, never appended through
        with writing(path):  # a full disk: one error naming the file
            # O_NOFOLLOW: a link put there after the check is refused by the kernel (ELOOP)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, FILE_MODE)
            try:
                view = memoryview(line)
                while view:  # a regular file takes it in one call; the loop is for a short write
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
        sync_before_commit(self.journal_path)
        return data

    def cut_torn_line(self) -> int:
        """Cut a torn last journal line (a crash or a full disk mid-write), so that the next event
        starts on a line of its own; return how many bytes were cut."""
        try:
            with open(self.own_file("journal.jsonl"), "rb+") as fh:
                size = fh.seek(0, os.SEEK_END)
                if size == 0:
                    return 0
                fh.seek(size - 1)
                if fh.read(1) == b"\n":
                    return 0
                keep = 0
                for start in range(size, 0, -(1 << 16)):  # find the last newline
                    lo = max(0, start - (1 << 16))
                    fh.seek(lo)
                    block = fh.read(start - lo)
                    at = block.rfind(b"\n")
                    if at >= 0:
                        keep = lo + at + 1
                        break
                fh.truncate(keep)
                fh.flush()
                os.fsync(fh.fileno())
                return size - keep
        except FileNotFoundError:
            return 0

    def events(self, valid_only: bool = True) -> list[dict]:
        """Journal events in order. With ``valid_only``, events of a step that a later resume
        redid are dropped (a ``run_resumed`` event voids earlier events at or after its step),
        and a torn last line (a crash mid-write) is ignored. A damaged line elsewhere (not UTF-8,
        not JSON, a field of the wrong kind) is skipped and its number kept in
        :attr:`skipped_lines`, for the caller to say so (:meth:`journal_damage`)."""
        path = self.own_file("journal.jsonl")
        self.skipped_lines = []
        if not path.is_file():
            return []
        raw: list[dict] = []
        with open(path, "rb") as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                event = _journal_object(line)
                if event is not None:
                    raw.append(event)
                elif line.endswith(b"\n"):  # a torn last line has no end: a crash, not damage
                    self.skipped_lines.append(number)
        if not valid_only:
            return raw
        kept: list[dict] = []
        for event in raw:
            if event.get("event") == "run_resumed":
                kept = [e for e in kept if not _voided_by(e, event)]
            elif event.get("event") == "run_extended":
                kept = _void_cut_reopen(kept)
            kept.append(event)
        return kept

    def journal_damage(self) -> str | None:
        """What the last :meth:`events` skipped, as one sentence naming the journal (None when
        nothing was skipped)."""
        lines = self.skipped_lines
        if not lines:
            return None
        shown = ", ".join(map(str, lines[:5])) + (", ..." if len(lines) > 5 else "")
        return (
            f"{self.journal_path}: {len(lines)} damaged line(s) skipped (line {shown}); "
            "the history shown lacks those events (restore the journal from a copy to see them)"
        )

    def iter_events(self, kind: str) -> Iterator[dict]:
        return (e for e in self.events() if e.get("event") == kind)

    def records(self, valid_only: bool = True) -> list[Record]:
        """:meth:`events` as typed records (:mod:`pbtnas.rundir.records`): fields an older run
        lacks read as their defaults, fields of a newer one are kept in ``extra``, an event this
        version does not know is an :class:`~pbtnas.rundir.records.UnknownEvent`."""
        return [record_from_json(e) for e in self.events(valid_only) if isinstance(e, dict)]

    def iter_records(self, kind: type[Record]) -> Iterator[Record]:
        """The valid records of one type, e.g. ``store.iter_records(MemberTrained)``."""
        return (r for r in self.records() if isinstance(r, kind))

    # -- manifest -----------------------------------------------------------------------------
    def write_manifest(self, manifest: Manifest) -> None:
        """Commit the manifest, with the SHA-256, size, uid and step of every checkpoint it needs
        (what :meth:`damaged_checkpoints` verifies on resume); ``version`` and ``checkpoints``
        are filled in here."""
        records: dict[str, dict] = {}
        for member in manifest.members:
            if member.checkpoint:
                records[member.checkpoint] = self._checkpoint_record(member.checkpoint, member.uid)
        best = manifest.best
        if best and (self.root / BEST_FILE).is_file():  # recorded like a checkpoint: resume and export verify it
            records[BEST_FILE] = {**self._checkpoint_record(BEST_FILE, best.uid), "step": best.step}
        for contender in manifest.top:  # what top-k-reevaluated and soups may read
            rel = contender.checkpoint
            if rel and rel not in records and self.absolute(rel).is_file():
                records[rel] = self._checkpoint_record(rel, contender.uid)
        if manifest.finished and (self.root / FINAL_FILE).is_file():  # the delivered network, as export reads it
            records[FINAL_FILE] = {**self._checkpoint_record(FINAL_FILE, None), "step": None}
        data = {**manifest.to_dict(), "version": MANIFEST_VERSION, "checkpoints": records}
        atomic_write_json(self.manifest_path, _strict(Manifest, data, "population.json").to_dict())

    def _checkpoint_record(self, rel: str, uid) -> dict:
        path = self.absolute(rel)
        stat = os.stat(path)
        signature = (stat.st_size, stat.st_mtime_ns, stat.st_ino)
        known = self._hashes.get(rel)
        if known is None or known[0] != signature:
            known = (signature, file_sha256(path))
            self._hashes[rel] = known
        return {"sha256": known[1], "bytes": stat.st_size, "uid": uid, "step": _step_of(rel)}

    def damaged_checkpoints(self, manifest: dict) -> list[tuple[int, str, str]]:
        """``(slot, relative path, what is wrong)`` of every checkpoint the manifest needs that is
        missing or not the file that was committed (checksum, size); empty when all are intact.
        A manifest of an older pbtnas (no checksums) is checked by reading each file."""
        records = manifest.get("checkpoints")
        damaged = []
        for slot, member in enumerate(manifest.get("members", [])):
            rel = member.get("checkpoint")
            if not rel:
                continue
            try:
                path = self.absolute(rel)
            except RunFileError:  # skippable like any damage: the member restarts from fresh weights
                damaged.append((slot, rel, "its path leads outside the run directory or through a symbolic link"))
                continue
            if not path.is_file():
                damaged.append((slot, rel, "it is missing"))
                continue
            record = (records or {}).get(rel)
            if record is None and records is not None:
                damaged.append((slot, rel, "the manifest has no checksum for it"))
                continue
            if record is None:  # older run directory: read it
                try:
                    _, _, meta = load_member(path)
                except CheckpointError as exc:
                    damaged.append((slot, rel, str(exc).replace(f"checkpoint {path} ", "").replace(f"{path} ", "")))
                    continue
                if meta.get("uid") is not None and meta.get("uid") != member.get("uid"):
                    damaged.append((slot, rel, f"it holds member {meta.get('uid')}, not member {member.get('uid')}"))
                continue
            what = mismatch(path, record)
            if what:
                damaged.append((slot, rel, what))
        return damaged

    def verified(self, relative: object, recorded_in: str, manifest: dict | None = None, remedy: str = "") -> Path:
        """A checkpoint named by the run's file ``recorded_in``, resolved (:meth:`resolve`) and
        checked against the SHA-256 and size the manifest recorded for it; one
        :class:`CheckpointError` naming it otherwise. ``manifest`` is read when not given; a file
        it holds no checksum for (a run of an older pbtnas) is left to :func:`load_member`."""
        path = self.resolve(relative, recorded_in)
        if not path.is_file():
            raise CheckpointError(f"checkpoint {path} (named in {self.root / recorded_in}) is missing; {remedy or 'restore it from a copy'}")
        if manifest is None:
            manifest = self.read_manifest() if self.manifest_path.exists() else {}
        record = (manifest.get("checkpoints") or {}).get(self.relative(path))
        what = mismatch(path, record) if record is not None else None
        if what:
            raise CheckpointError(f"checkpoint {path} is damaged: {what}; {remedy or 'restore it from a copy'}")
        return path

    def inside(self, path: str | Path) -> bool:
        """Whether ``path`` (symbolic links followed) lies inside the run directory."""
        try:
            Path(path).resolve().relative_to(self.root.resolve())
        except ValueError:
            return False
        return True

    def read_manifest(self) -> dict:
        if not self.own_file("population.json").is_file():
            raise PbtnasError(f"{self.root} has no population.json: not a pbtnas run, or it never started")
        try:
            with open(self.manifest_path) as fh:
                data = json.load(fh)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"{self.manifest_path} is corrupt: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("members"), list) or not all(isinstance(m, dict) for m in data["members"]):
            raise CheckpointError(f"{self.manifest_path} is not a pbtnas manifest (expected an object with a list of members)")
        if data.get("version", 0) > MANIFEST_VERSION:
            raise CheckpointError(f"{self.manifest_path} was written by a newer pbtnas")
        return check_manifest(data, self.manifest_path)  # keys and kinds: one error, not a KeyError later

    def read_manifest_record(self) -> Manifest:
        """:meth:`read_manifest` as a :class:`~pbtnas.rundir.records.Manifest` (fields an older
        manifest lacks take their defaults)."""
        return Manifest.from_dict(self.read_manifest())

    # -- best network and summary ------------------------------------------------------------
    def save_best(self, source: Path, record: BestRecord) -> None:
        record = record.checked("best/best.json")
        self.own_file("best/best.json")  # a linked best folder would take the writes elsewhere
        self.best_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.best_dir / "member.pt", Path(source).read_bytes())
        atomic_write_json(self.best_dir / "best.json", record.to_dict())

    def read_best(self) -> dict | None:
        """``best/best.json`` (None if absent); damaged: one error naming it."""
        data = self.read_json("best/best.json", f"restore it from a copy, or continue the run with: pbtnas resume {self.root}")
        if data is not None and not isinstance(data, dict):
            raise RunFileError(f"{self.best_dir / 'best.json'} is damaged (not a JSON object); restore it from a copy")
        return data

    def read_best_record(self) -> BestRecord | None:
        """``best/best.json`` as a :class:`~pbtnas.rundir.records.BestRecord` (None if absent)."""
        data = self.read_best()
        return BestRecord.from_dict(data) if isinstance(data, dict) else None

    def write_summary(self, summary: Summary) -> None:
        atomic_write_json(self.root / "summary.json", summary.checked("summary.json").to_dict())

    def read_summary(self) -> dict | None:
        """``summary.json`` (None while the run has not finished); damaged, of the wrong shape or
        a symbolic link: one :class:`RunFileError` naming it and what to do."""
        remedy = f"remove it and run 'pbtnas resume {self.root}' to evaluate the final network again, or restore it from a copy"
        data = self.read_json("summary.json", remedy)
        return None if data is None else check_summary(data, self.root / "summary.json", remedy)

    def read_summary_record(self) -> Summary | None:
        """:meth:`read_summary` as a :class:`~pbtnas.rundir.records.Summary` (keys an older
        summary lacks read as None; keys of a newer pbtnas are kept in ``extra``)."""
        data = self.read_summary()
        return None if data is None else Summary.from_dict(data)

    def finished(self) -> bool:
        """Whether the run has finished: its ``summary.json`` says so. The one answer of every
        verb (status, report, export, soup, resume): a manifest marked finished whose summary is
        gone is a run whose final record was lost, which ``resume`` evaluates and writes again."""
        summary = self.read_summary()
        return bool(summary and summary.get("finished") is True)

    # -- housekeeping -------------------------------------------------------------------------
    def prune_checkpoints(self, keep_from_step: int, referenced: set[str]) -> None:
        """Delete step folders older than ``keep_from_step`` unless the manifest still needs them."""
        base = self.root / "checkpoints"
        if not base.is_dir():
            return
        for folder in sorted(base.iterdir()):
            if not folder.name.startswith("step_"):
                continue
            step = int(folder.name[len("step_") :])
            if step >= keep_from_step:
                continue
            if any(ref.startswith(self.relative(folder) + os.sep) for ref in referenced):
                continue
            shutil.rmtree(folder, ignore_errors=True)
