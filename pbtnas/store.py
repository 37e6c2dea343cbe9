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
      summary.json          written when the run finishes
"""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any, Iterator

import torch

from .errors import CheckpointError, PbtnasError
from .space import Genome
from .state import MemberState

CHECKPOINT_FORMAT = "pbtnas-member"
CHECKPOINT_VERSION = 1
MANIFEST_VERSION = 1


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder, fsync, then rename over the target."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=2, default=_json_default) + "\n").encode())


def _json_default(obj):
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def save_member(path: str | Path, genome: Genome, state: MemberState, uid: int, meta: dict | None = None) -> None:
    """Atomically write one member's checkpoint: genome, state and metadata in one file."""
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
    atomic_write_bytes(Path(path), buffer.getvalue())


def load_member(path: str | Path) -> tuple[Genome, MemberState, dict]:
    """Read a checkpoint; any damage becomes one :class:`CheckpointError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        # Checkpoints hold numpy arrays and plain containers besides tensors (replay buffers,
        # counters), which the weights-only unpickler rejects; load only files you trust.
        data = torch.load(path, map_location="cpu", weights_only=False)
    except (EOFError, RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError, OSError) as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a pbtnas member checkpoint")
    if data.get("version", 0) > CHECKPOINT_VERSION:
        raise CheckpointError(f"{path} was written by a newer pbtnas (format version {data['version']})")
    return data["genome"], MemberState.from_dict(data["state"]), {"uid": data.get("uid"), **data.get("meta", {})}


def _voided_by(event: dict, resumed: dict) -> bool:
    """Whether a journal event was undone by a later resume.

    Synchronous runs redo whole steps from ``from_step``; asynchronous runs redo, per slot, the
    steps at or after that slot's committed progress (``slot_steps``).
    """
    step = event.get("step")
    if step is None or event.get("event") == "run_started":
        return False
    slot_steps = resumed.get("slot_steps")
    if resumed.get("mode") == "async" and slot_steps is not None and event.get("slot") is not None:
        slot = event["slot"]
        return 0 <= slot < len(slot_steps) and step >= slot_steps[slot]
    return step >= resumed.get("from_step", 0)


class RunStore:
    """Reads and writes one run directory (see module docstring)."""

    def __init__(self, root: str | Path):
        # Absolute, so that checkpoint paths handed to workers (absolute) and the relative paths
        # kept in the manifest always agree, whatever directory the run was started from.
        self.root = Path(root).absolute()

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

    def relative(self, path: Path) -> str:
        return str(Path(path).relative_to(self.root))

    def absolute(self, relative: str) -> Path:
        return self.root / relative

    # -- creation -----------------------------------------------------------------------------
    def create(self, config: dict) -> None:
        """Start a new run directory; refuses to overwrite a directory holding another run."""
        if self.manifest_path.exists() or self.journal_path.exists():
            raise PbtnasError(
                f"{self.root} already holds a run; continue it with 'pbtnas resume {self.root}' or choose another --out"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        import yaml

        atomic_write_bytes(self.config_path, yaml.safe_dump(config, sort_keys=False).encode())

    def read_config(self) -> dict:
        import yaml

        if not self.config_path.is_file():
            raise PbtnasError(f"{self.root} is not a pbtnas run directory (no config.yaml)")
        with open(self.config_path) as fh:
            return yaml.safe_load(fh)

    # -- journal ------------------------------------------------------------------------------
    def append(self, event: str, **fields: Any) -> dict:
        record = {"event": event, "time": round(time.time(), 3), **fields}
        line = json.dumps(record, default=_json_default)
        with open(self.journal_path, "a") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        return record

    def events(self, valid_only: bool = True) -> list[dict]:
        """Journal events in order. With ``valid_only``, events of a step that a later resume
        redid are dropped (a ``run_resumed`` event voids earlier events at or after its step),
        and a torn last line (a crash mid-write) is ignored."""
        if not self.journal_path.is_file():
            return []
        raw: list[dict] = []
        with open(self.journal_path) as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    raw.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        if not valid_only:
            return raw
        kept: list[dict] = []
        for event in raw:
            if event.get("event") == "run_resumed":
                kept = [e for e in kept if not _voided_by(e, event)]
            kept.append(event)
        return kept

    def iter_events(self, kind: str) -> Iterator[dict]:
        return (e for e in self.events() if e.get("event") == kind)

    # -- manifest -----------------------------------------------------------------------------
    def write_manifest(self, manifest: dict) -> None:
        atomic_write_json(self.manifest_path, {"version": MANIFEST_VERSION, **manifest})

    def read_manifest(self) -> dict:
        if not self.manifest_path.is_file():
            raise PbtnasError(f"{self.root} has no population.json: not a pbtnas run, or it never started")
        try:
            with open(self.manifest_path) as fh:
                data = json.load(fh)
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{self.manifest_path} is corrupt: {exc}") from None
        if data.get("version", 0) > MANIFEST_VERSION:
            raise CheckpointError(f"{self.manifest_path} was written by a newer pbtnas")
        return data

    # -- best network and summary ------------------------------------------------------------
    def save_best(self, source: Path, info: dict) -> None:
        self.best_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.best_dir / "member.pt", Path(source).read_bytes())
        atomic_write_json(self.best_dir / "best.json", info)

    def read_best(self) -> dict | None:
        path = self.best_dir / "best.json"
        if not path.is_file():
            return None
        with open(path) as fh:
            return json.load(fh)

    def write_summary(self, summary: dict) -> None:
        atomic_write_json(self.root / "summary.json", summary)

    def read_summary(self) -> dict | None:
        path = self.root / "summary.json"
        if not path.is_file():
            return None
        with open(path) as fh:
            return json.load(fh)

    # -- housekeeping -------------------------------------------------------------------------
    def prune_checkpoints(self, keep_from_step: int, referenced: set[str]) -> None:
        """Delete step folders older than ``keep_from_step`` unless the manifest still needs them."""
        base = self.root / "checkpoints"
        if not base.is_dir():
            return
        for folder in sorted(base.iterdir()):
            if not folder.name.startswith("step_"):
                continue
            step = int(folder.name[len("step_"):])
            if step >= keep_from_step:
                continue
            if any(ref.startswith(self.relative(folder) + os.sep) for ref in referenced):
                continue
            shutil.rmtree(folder, ignore_errors=True)
