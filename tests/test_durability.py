"""Durability off the driver's path: checkpoints returned by a backend and journal lines are
fsynced in the background, and the commit point (the manifest) waits for those fsyncs, so the
manifest never reaches the disk before what it relies on; an fsync that fails stops the run
before the commit."""

import errno
import json
import os
import threading
import time

import pytest

from pbtnas.engine.runner import Runner
from pbtnas.rundir import atomic
from pbtnas.rundir.atomic import WriteError, atomic_write_bytes, sync_before_commit, wait_for_syncs


def _fd_path(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


@pytest.fixture
def fsyncs(monkeypatch, tmp_path):
    """Record every fsync as (file name, journal size at that moment, journal size the fsync
    covers); journal fsyncs are made slow, so a manifest that did not wait for them would
    overtake them."""
    calls: list[tuple[str, int, int]] = []
    real = os.fsync
    journal = tmp_path / "run" / "journal.jsonl"

    def recording(fd):
        path = _fd_path(fd)
        covered = -1
        if path == str(journal):
            time.sleep(0.02)
            covered = os.fstat(fd).st_size
        real(fd)
        calls.append((os.path.basename(path), journal.stat().st_size if journal.exists() else 0, covered))

    monkeypatch.setattr(os, "fsync", recording)
    yield calls
    wait_for_syncs()


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to name an fd's file")
def test_manifest_is_fsynced_after_the_journal_it_relies_on(tiny_config, tmp_path, fsyncs):
    Runner(tiny_config(steps=2), tmp_path / "run", progress=False).start().run()
    manifests = [i for i, (name, _, _) in enumerate(fsyncs) if name.startswith(".population.json.")]
    assert len(manifests) >= 3  # the start, each step, the end
    for at in manifests:
        journal_now = fsyncs[at][1]
        synced = max((covered for name, _, covered in fsyncs[:at] if name == "journal.jsonl"), default=0)
        # every line appended before the commit point was on the disk when the manifest was
        assert synced == journal_now, f"manifest fsync {at}: journal {journal_now} bytes, {synced} synced"


def test_a_deferred_fsync_that_fails_names_the_file_once(tmp_path, monkeypatch):
    target = tmp_path / "uid0001.pt"
    atomic_write_bytes(target, b"weights", durable=False)
    real = os.fsync

    def failing(fd):
        if _fd_path(fd) == str(target):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real(fd)

    monkeypatch.setattr(os, "fsync", failing)
    sync_before_commit(target)
    with pytest.raises(WriteError, match=r"cannot write .*uid0001\.pt: .*EIO"):
        wait_for_syncs()
    wait_for_syncs()  # reported once, to the commit point it stopped
    assert target.read_bytes() == b"weights"  # the file itself is whole (renamed into place)


def test_a_pruned_file_needs_no_fsync(tmp_path):
    target = tmp_path / "gone.pt"
    atomic_write_bytes(target, b"x", durable=False)
    sync_before_commit(target)
    target.unlink()
    wait_for_syncs()  # no manifest will name it: nothing to report


def test_a_failed_journal_fsync_stops_the_run_before_its_commit(tiny_config, tmp_path, monkeypatch):
    """An fsync refused late (an I/O error) stops the run at the next commit point: the manifest
    still holds the last step whose journal reached the disk, so a resume redoes the rest."""
    run_dir = tmp_path / "run"
    real = os.fsync
    seen = {"journal": 0}

    def failing_later(fd):
        if _fd_path(fd).endswith("journal.jsonl"):
            seen["journal"] += 1
            manifest = run_dir / "population.json"
            if manifest.exists() and json.loads(manifest.read_text())["step_done"] >= 1:
                raise OSError(errno.EIO, os.strerror(errno.EIO))
        real(fd)

    monkeypatch.setattr(os, "fsync", failing_later)
    with pytest.raises(WriteError, match="journal.jsonl"):
        Runner(tiny_config(steps=3), run_dir, progress=False).start().run()
    monkeypatch.setattr(os, "fsync", real)
    assert json.loads((run_dir / "population.json").read_text())["step_done"] == 1
    assert seen["journal"] > 0
    assert not atomic._pending and not atomic._done


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to name an fd's file")
def test_children_are_fsynced_off_the_driver_thread_and_before_the_manifest_names_them(tiny_config, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    real = os.fsync
    synced: dict[str, str] = {}  # checkpoint path (relative to the run) -> the thread that fsynced it
    named_unsynced: list[str] = []

    def recording(fd):
        path = _fd_path(fd)
        if os.path.basename(path).startswith(".population.json."):  # the commit point, before its rename
            with open(path) as fh:
                manifest = json.load(fh)
            named_unsynced.extend(m["checkpoint"] for m in manifest["members"] if m["checkpoint"] and m["checkpoint"] not in synced)
        real(fd)
        name = os.path.basename(path)
        if name.startswith("."):  # fsynced before its rename (a durable write): the name it gets
            name = name[1:].split(".pt.", 1)[0] + ".pt"
        if name.endswith(".pt") and path.startswith(str(run_dir)):
            synced[os.path.relpath(os.path.join(os.path.dirname(path), name), run_dir)] = threading.current_thread().name

    monkeypatch.setattr(os, "fsync", recording)
    Runner(tiny_config(steps=3), run_dir, progress=False).start().run()
    children = [e for e in map(json.loads, (run_dir / "journal.jsonl").read_text().splitlines()) if e["event"] == "child_created"]
    assert children and named_unsynced == []
    for child in children:
        path = os.path.join("checkpoints", f"step_{child['step']:04d}", f"uid{child['uid']:04d}.pt")
        assert synced[path].startswith("pbtnas-fsync"), (path, synced[path])
