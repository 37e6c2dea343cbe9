"""Faults around the run directory: one writer at a time, damaged checkpoints, a torn journal,
starts that never committed, crafted checkpoints. Every bad case is one ``error:`` line (exit 2)
or a journaled, documented recovery; none is a traceback, none costs another member's work."""

import json
import os
import pickle
import re
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
from run_helpers import QUICK, StopAfter, fitness_trace

from pbtnas.engine.runner import Runner
from pbtnas.errors import CheckpointError
from pbtnas.rundir.store import RunLockedError, RunStore, load_member, save_member

PBTNAS = [sys.executable, "-m", "pbtnas"]


def cli(*args, env=None):
    return subprocess.run(PBTNAS + list(args), capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})})


def one_error_line(proc):
    lines = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith("run directory:")]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    return lines[0]


def stopped_run(tiny_config, run_dir, after=0, steps=3):
    runner = Runner(tiny_config(steps=steps), run_dir, progress=False)
    runner.observers.append(StopAfter(after))
    with pytest.raises(KeyboardInterrupt):
        runner.start().run()
    return RunStore(run_dir)


def hold_lock(run_dir):
    """A separate process holding the run's lock (as a running ``pbtnas resume`` would)."""
    code = textwrap.dedent(f"""
        import sys, time
        from pbtnas.rundir.store import RunStore
        store = RunStore({str(run_dir)!r}); store.lock()
        print("locked", flush=True); time.sleep(600)
    """)
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


# -- one writer -----------------------------------------------------------------------------------
def test_a_second_writer_is_refused_with_the_holders_pid(tiny_config, tmp_path):
    store = stopped_run(tiny_config, tmp_path / "r")
    holder = hold_lock(tmp_path / "r")
    try:
        before = (tmp_path / "r/journal.jsonl").read_bytes()
        with pytest.raises(RunLockedError, match=f"PID {holder.pid} "):
            Runner.resume(tmp_path / "r", progress=False)
        line = one_error_line(cli("resume", str(tmp_path / "r"), "--quiet"))
        assert f"PID {holder.pid} " in line and "in use by another pbtnas process" in line
        assert (tmp_path / "r/journal.jsonl").read_bytes() == before  # nothing written by the refused ones
    finally:
        holder.kill()
        holder.wait()
    # the holder was killed: its lock is stale, taken over and journaled
    Runner.resume(tmp_path / "r", progress=False).run()
    taken = list(store.iter_events("lock_taken_over"))
    assert [e["previous"]["pid"] for e in taken] == [holder.pid]
    assert store.read_summary()["finished"]


def test_run_out_on_a_directory_in_use_is_refused(tiny_config, tmp_path):
    holder = hold_lock(tmp_path / "r")
    try:
        line = one_error_line(cli("run", "simulated", *QUICK, "--out", str(tmp_path / "r")))
        assert f"PID {holder.pid} " in line
    finally:
        holder.kill()
        holder.wait()
    assert not (tmp_path / "r/config.yaml").exists()


def test_the_lock_is_given_up_however_the_run_ends(tiny_config, tmp_path):
    store = stopped_run(tiny_config, tmp_path / "r")  # interrupted
    assert store.lock() is None  # free, and its last holder ended cleanly (empty lock file)
    store.unlock()
    Runner.resume(tmp_path / "r", progress=False).run()
    finished = Runner.resume(tmp_path / "r", progress=False)
    finished.run()  # a finished run returns its summary and gives the lock up too
    assert store.lock() is None
    store.unlock()


class StatusDuringRun:
    """Observer: runs ``pbtnas status`` (another process) once step 0 is committed."""

    def __init__(self, run_dir):
        self.run_dir, self.output = run_dir, None

    def on_step_end(self, step, runner):
        if step == 0:
            self.output = cli("status", str(self.run_dir)).stdout


def test_status_says_whether_a_process_is_writing_the_run(tiny_config, tmp_path):
    run_dir = tmp_path / "r"
    watcher = StatusDuringRun(run_dir)
    runner = Runner(tiny_config(steps=3), run_dir, progress=False)
    runner.observers.extend([watcher, StopAfter(1)])
    with pytest.raises(KeyboardInterrupt):
        runner.start().run()
    assert f"step 1/3 done, running (PID {os.getpid()} on " in watcher.output.splitlines()[0]
    stopped = cli("status", str(run_dir)).stdout.splitlines()[0]
    assert stopped.endswith(f"step 2/3 done, stopped (no process is writing it); continue with: pbtnas resume {run_dir}")
    Runner.resume(run_dir, progress=False).run()
    assert cli("status", str(run_dir)).stdout.splitlines()[0].endswith("step 3/3 done, finished")


# -- damaged checkpoints ---------------------------------------------------------------------------
def _damage(kind, path, other):
    data = path.read_bytes()
    if kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "zero-length":
        path.write_bytes(b"")
    elif kind == "zero-filled":
        path.write_bytes(bytes(len(data)))
    elif kind == "bit-flipped":
        flipped = bytearray(data)
        flipped[len(data) // 2] ^= 0x10
        path.write_bytes(bytes(flipped))
    elif kind == "deleted":
        path.unlink()
    elif kind == "another-members":
        path.write_bytes(other.read_bytes())


KINDS = ["truncated", "zero-length", "zero-filled", "bit-flipped", "deleted", "another-members"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_damaged_checkpoint_stops_resume_naming_the_file(tiny_config, tmp_path, kind):
    store = stopped_run(tiny_config, tmp_path / "r", after=1)
    members = store.read_manifest()["members"]
    victim, other = members[0], members[1]
    path = store.absolute(victim["checkpoint"])
    _damage(kind, path, store.absolute(other["checkpoint"]))
    journal = store.journal_path.read_bytes()
    with pytest.raises(CheckpointError) as info:
        Runner.resume(tmp_path / "r", progress=False)
    message = str(info.value)
    assert str(path) in message and f"member {victim['uid']}" in message and "--skip-damaged" in message
    assert "\n" not in message
    assert store.journal_path.read_bytes() == journal  # refused before anything was written


def test_damaged_checkpoint_from_the_cli_and_skip_damaged(tmp_path):
    run_dir = tmp_path / "r"
    killed = cli("run", "simulated", *QUICK, "--out", str(run_dir), env={"PBTNAS_FAULT": "after-step:0:kill"})
    assert killed.returncode == -signal.SIGKILL
    store = RunStore(run_dir)
    victim = store.read_manifest()["members"][2]
    path = store.absolute(victim["checkpoint"])
    _damage("bit-flipped", path, None)
    line = one_error_line(cli("resume", str(run_dir), "--quiet"))
    assert str(path) in line
    resumed = cli("resume", str(run_dir), "--quiet", "--skip-damaged")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    skipped = list(store.iter_events("checkpoint_skipped"))
    assert [(e["uid"], e["file"]) for e in skipped] == [(victim["uid"], store.relative(path))]
    assert store.read_summary()["finished"]


def test_a_skipped_member_restarts_from_fresh_weights_and_the_others_keep_their_work(tiny_config, tmp_path):
    full = Runner(tiny_config(steps=3), tmp_path / "full", progress=False).start().run()
    store = stopped_run(tiny_config, tmp_path / "r", after=0)
    victim = store.read_manifest()["members"][3]
    store.absolute(victim["checkpoint"]).unlink()
    Runner.resume(tmp_path / "r", progress=False, skip_damaged=True).run()
    reference = {(step, uid): f for step, _, uid, f in fitness_trace(tmp_path / "full")}
    step1 = {uid: f for step, _, uid, f in fitness_trace(tmp_path / "r") if step == 1}
    assert all(reference[(1, uid)] == f for uid, f in step1.items() if uid != victim["uid"])
    assert full["finished"]


def test_checkpoints_are_recorded_with_checksum_uid_and_step(tiny_config, tmp_path):
    Runner(tiny_config(steps=2), tmp_path / "r", progress=False).start().run()
    store = RunStore(tmp_path / "r")
    manifest = store.read_manifest()
    for member in manifest["members"]:
        record = manifest["checkpoints"][member["checkpoint"]]
        assert record["uid"] == member["uid"] and isinstance(record["step"], int)
        assert len(record["sha256"]) == 64 and record["bytes"] == store.absolute(member["checkpoint"]).stat().st_size
        assert load_member(store.absolute(member["checkpoint"]))[2]["uid"] == member["uid"]


# -- the journal --------------------------------------------------------------------------------
def test_a_torn_last_journal_line_is_cut_before_appending(tiny_config, tmp_path):
    store = stopped_run(tiny_config, tmp_path / "r", after=0)
    with open(store.journal_path, "ab") as fh:
        fh.write(b'{"event": "member_trained", "step": 1, "sl')  # a crash mid-write
    Runner.resume(tmp_path / "r", progress=False).run()
    lines = store.journal_path.read_text().splitlines()
    assert all(json.loads(line) for line in lines)  # every line whole: nothing glued to the torn one
    repaired = list(store.iter_events("journal_repaired"))
    assert len(repaired) == 1 and repaired[0]["torn_bytes"] == len(b'{"event": "member_trained", "step": 1, "sl')
    assert store.read_summary()["finished"]


# -- starts that never committed ---------------------------------------------------------------------
def test_a_start_killed_before_its_first_commit_is_no_dead_end(tiny_config, tmp_path):
    runner = Runner(tiny_config(steps=2), tmp_path / "r", progress=False).start()
    runner.store.unlock()
    store = RunStore(tmp_path / "r")
    store.manifest_path.unlink()  # as if killed between config.yaml and population.json
    # resume starts it from scratch ...
    summary = Runner.resume(tmp_path / "r", progress=False).run()
    reference = Runner(tiny_config(steps=2), tmp_path / "ref", progress=False).start().run()
    assert fitness_trace(tmp_path / "r") == fitness_trace(tmp_path / "ref")
    assert summary["final_metric"] == reference["final_metric"]
    # ... and run --out accepts such a directory too
    runner = Runner(tiny_config(steps=2), tmp_path / "s", progress=False).start()
    runner.store.unlock()
    RunStore(tmp_path / "s").manifest_path.unlink()
    Runner(tiny_config(steps=2, seed=4), tmp_path / "s", progress=False).start().run()
    assert RunStore(tmp_path / "s").read_config()["seed"] == 4
    assert len(list(RunStore(tmp_path / "s").iter_events("run_started"))) == 1


def test_a_run_that_failed_before_training_can_be_started_again_in_place(tmp_path):
    run_dir = tmp_path / "r"
    failed = cli("run", "simulated", *QUICK[:-4], "--backend", "ray", "--address", "127.0.0.1:1", "--set", "loggers=none", "--out", str(run_dir))
    if "ray is not installed" in failed.stderr:
        pytest.skip("ray not installed")
    one_error_line(failed)
    again = cli("run", "simulated", *QUICK, "--out", str(run_dir))
    assert again.returncode == 0, again.stderr[-2000:]
    assert RunStore(run_dir).read_summary()["finished"]


def test_a_directory_with_work_is_still_refused(tiny_config, tmp_path):
    stopped_run(tiny_config, tmp_path / "r", after=0)
    line = one_error_line(cli("run", "simulated", *QUICK, "--out", str(tmp_path / "r")))
    assert "already holds a run" in line


# -- safe loading ----------------------------------------------------------------------------------
class _Payload:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))  # would create a file when unpickled


def test_a_crafted_checkpoint_is_refused_without_running_code(tiny_config, tmp_path):
    import torch

    store = stopped_run(tiny_config, tmp_path / "r", after=0)
    victim = store.read_manifest()["members"][0]
    path = store.absolute(victim["checkpoint"])
    marker = tmp_path / "pwned"
    genome, state, meta = load_member(path)
    torch.save(
        {
            "format": "pbtnas-member",
            "version": 1,
            "uid": victim["uid"],
            "genome": dict(genome),
            "state": state.to_dict(),
            "meta": {"x": _Payload(str(marker))},
        },
        path,
    )
    with pytest.raises(CheckpointError, match="refused"):
        load_member(path)
    assert not marker.exists()
    line = one_error_line(cli("resume", str(tmp_path / "r"), "--quiet"))
    assert str(path) in line and "is damaged" in line
    assert not marker.exists()
    # export reads best/member.pt: a crafted one is refused with one line, never run
    best = tmp_path / "r/best/member.pt"
    best.write_bytes(path.read_bytes())
    line = one_error_line(cli("export", str(tmp_path / "r"), "--out", str(tmp_path / "x")))
    assert str(best) in line and "refused" in line
    assert not marker.exists()
    with open(path, "wb") as fh:  # a bare pickle, not even a torch file
        pickle.dump(_Payload(str(marker)), fh)
    with pytest.raises(CheckpointError):
        load_member(path)
    assert not marker.exists()


def test_checkpoints_holding_numpy_arrays_still_load(tmp_path):
    import numpy as np
    import torch

    from pbtnas.search.state import MemberState

    state = MemberState(
        models={"m": {"w": torch.ones(2)}},
        extra={
            "buffer": {"obs": np.arange(6, dtype=np.float32).reshape(2, 3), "n": np.int64(3), "rng": np.random.default_rng(0).bit_generator.state}
        },
    )
    save_member(tmp_path / "m.pt", {"g": 1}, state, 7, {"step": 0})
    genome, loaded, meta = load_member(tmp_path / "m.pt")
    assert meta["uid"] == 7 and np.array_equal(loaded.extra["buffer"]["obs"], state.extra["buffer"]["obs"])


def test_shared_files_get_the_usual_mode(tiny_config, tmp_path):
    from pbtnas.rundir.atomic import atomic_write_bytes

    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "f.json", b"{}")
    finally:
        os.umask(old)
    assert (tmp_path / "f.json").stat().st_mode & 0o777 == 0o666 & ~0o022


def test_export_never_follows_a_path_out_of_the_run_or_the_export(tiny_config, tmp_path):
    import pbtnas
    from pbtnas.analysis.export import export_run

    Runner(tiny_config(steps=1), tmp_path / "r", progress=False).start().run()
    summary_path = tmp_path / "r/summary.json"
    summary = json.loads(summary_path.read_text())
    outside = tmp_path / "elsewhere.pt"
    outside.write_bytes((tmp_path / "r/final/member.pt").read_bytes())
    for bad in (str(outside), "../elsewhere.pt"):
        summary_path.write_text(json.dumps({**summary, "final_checkpoint": bad}))
        with pytest.raises(CheckpointError, match="outside the run directory"):
            export_run(tmp_path / "r", tmp_path / "x")
    summary_path.write_text(json.dumps(summary))
    export_run(tmp_path / "r", tmp_path / "x")
    weights = tmp_path / "x/model.safetensors"
    os.replace(weights, tmp_path / "w.safetensors")
    os.symlink(tmp_path / "w.safetensors", weights)
    with pytest.raises(CheckpointError, match="outside the export folder"):
        pbtnas.load(str(tmp_path / "x"))


def test_member_extra_is_checked_for_what_a_checkpoint_can_hold_when_saved(tmp_path):
    """What the check accepts loads with weights_only=True; what it refuses is named by path
    at save time (instead of a later 'damaged or crafted' refusal on load)."""
    import collections
    import enum

    import numpy as np

    from pbtnas.errors import TaskContractError
    from pbtnas.rundir.store import load_member, save_member
    from pbtnas.search.state import MemberState

    class Colour(enum.IntEnum):
        RED = 1

    accepted = {
        "count": 3,
        "rate": 0.5,
        "name": "x",
        "flags": {True, False},
        "buffer": np.zeros((4, 2), np.float32),
        "seen": np.int64(7),
        "history": [(1, torch.ones(2)), {"a": None, 2: b"raw"}],
        "ordered": collections.OrderedDict(a=torch.Size([2]), b=torch.float16, c=torch.device("cpu")),
    }
    save_member(tmp_path / "ok.pt", {"g": 1}, MemberState(models={}, optim={}, extra=accepted), uid=0)
    assert load_member(tmp_path / "ok.pt")[1].extra["history"][1] == {"a": None, 2: b"raw"}
    refused = {
        "obj": (object(), "member.extra['obj'] holds a builtins.object"),
        "deque": (collections.deque([1]), "member.extra['deque'] holds a collections.deque"),
        "enum": ([Colour.RED], "member.extra['enum'][0] holds a "),
        "objects": (np.array([None]), "holds a numpy array of dtype object"),
        "key": ({(1, 2): 0}, "member.extra['key'] has a key of type tuple"),
        "frozen": (frozenset([1]), "holds a builtins.frozenset"),
    }
    for name, (value, message) in refused.items():
        with pytest.raises(TaskContractError, match=re.escape(message)):
            save_member(tmp_path / f"{name}.pt", {"g": 1}, MemberState(models={}, optim={}, extra={name: value}), uid=0)
        assert not (tmp_path / f"{name}.pt").exists()
