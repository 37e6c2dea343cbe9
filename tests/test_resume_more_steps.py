"""More budget for a finished run: ``pbtnas resume RUN --set steps=N`` (and ``pbtnas.resume(run,
steps=N)``) trains on from the final population and delivers again, keeping the earlier delivery.

The property that says the continuation is sensible: a run of 4 steps given 6 trains exactly as a
run started with 6 (same members, uids, fitnesses, children and delivered network), because the
exploitation the last step skipped only for being the last is made up when the run reopens."""

import json

import pytest
from run_helpers import fitness_trace

import pbtnas
from pbtnas.cli import main
from pbtnas.config import config_from_dict
from pbtnas.engine.progress import Progress
from pbtnas.engine.runner import make_runner
from pbtnas.engine.sync_schedule import SyncSchedule
from pbtnas.errors import ConfigError
from pbtnas.rundir.store import RunStore
from pbtnas.tasks.presets import get_preset


def _config(steps, **overrides):
    data = get_preset("simulated")
    data.update(population=4, steps=steps, seed=3, backend="inprocess", loggers=["none"], **overrides)
    data["task"]["step_seconds"] = 0.0
    return config_from_dict(data)


def _run(root, steps, **overrides):
    return make_runner(_config(steps, **overrides), root, progress=False).start().run()


def _children(root):
    return [(e["step"], e["slot"], e["uid"], e["parents"]) for e in RunStore(root).iter_events("child_created")]


def _refreshed(root):
    return [(e["step"], e["slot"], e["uid"], e["seed"]) for e in RunStore(root).iter_events("member_refreshed")]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A run started with 6 steps, and its summary."""
    root = tmp_path_factory.mktemp("more") / "six"
    return root, _run(root, 6)


def test_four_steps_given_six_train_on_as_a_six_step_run_and_deliver_again(reference, tmp_path, capsys):
    six, full = reference
    root = tmp_path / "four"
    first = _run(root, 4)
    assert main(["resume", str(root), "--set", "steps=6", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "changed steps: 4 -> 6" in captured.err
    brief = json.loads(captured.out)
    assert brief["steps_done"] == 6

    summary = RunStore(root).read_summary()
    assert summary["steps"] == 6 and summary["steps_done"] == 6 and summary["finished"] is True
    # member steps, uids and children continue exactly as in the run that had 6 steps from the start
    assert fitness_trace(root) == fitness_trace(six)
    assert _children(root) == _children(six)
    assert [summary[k] for k in ("best_uid", "best_fitness", "final_metric")] == [full[k] for k in ("best_uid", "best_fitness", "final_metric")]
    uids = [uid for _, _, uid, _ in _children(root)]
    assert len(uids) == len(set(uids)) and max(uids) >= 4 + 3  # new children after step 4 got new uids

    # the earlier delivery stays: in the summary, in deliveries/, and in the journal
    [earlier] = summary["earlier_deliveries"]
    assert earlier["steps_done"] == 4 and earlier["best_uid"] == first["best_uid"] and earlier["final_metric"] == first["final_metric"]
    kept = root / earlier["summary"]
    assert json.loads(kept.read_text())["steps_done"] == 4 and (root / earlier["final_checkpoint"]).is_file()
    finished = list(RunStore(root).iter_events("run_finished"))
    assert [e["steps_done"] for e in finished] == [4, 6]
    [extended] = RunStore(root).iter_events("run_extended")
    assert extended["steps_done"] == 4 and extended["steps"] == 6 and extended["delivery"] == "deliveries/steps_0004"
    # the new final network is the one export reads, with its checksum in the manifest
    manifest = RunStore(root).read_manifest()
    assert manifest["finished"] and manifest["steps"] == 6 and "final/member.pt" in manifest["checkpoints"]

    # the journal reads as a whole run: status and report
    assert main(["status", str(root)]) == 0
    assert "finished" in capsys.readouterr().out
    assert main(["report", str(root), "--out", str(tmp_path / "report")]) == 0
    capsys.readouterr()
    page = (tmp_path / "report" / "index.html").read_text()
    assert "earlier delivery" in page and "after 4 steps" in page


@pytest.mark.parametrize("algorithm", ["random-sp", "mutation"])
def test_other_algorithms_train_on_as_a_longer_run(tmp_path, algorithm):
    six = tmp_path / "six"
    _run(six, 5, algorithm=algorithm)
    root = tmp_path / "three"
    _run(root, 3, algorithm=algorithm)
    summary = pbtnas.resume(str(root), steps=5)
    assert summary["steps_done"] == 5 and summary["earlier_deliveries"][0]["steps_done"] == 3
    assert fitness_trace(root) == fitness_trace(six)
    assert _children(root) == _children(six) and _refreshed(root) == _refreshed(six)


def test_the_library_extends_and_refuses_as_the_cli_does(tmp_path):
    root = tmp_path / "run"
    _run(root, 3)
    for steps in (3, 2):
        with pytest.raises(ConfigError, match=f"steps={steps} leaves nothing to train: the run has finished after 3 steps"):
            pbtnas.resume(str(root), steps=steps)
    assert RunStore(root).read_summary()["steps_done"] == 3  # nothing written
    assert pbtnas.resume(str(root))["steps_done"] == 3  # unchanged: the summary, nothing trained
    assert not list(RunStore(root).iter_events("run_extended"))
    assert pbtnas.resume(str(root), steps=4)["steps_done"] == 4
    assert pbtnas.resume(str(root), steps=5)["steps_done"] == 5  # again: each delivery kept
    summary = RunStore(root).read_summary()
    assert [d["steps_done"] for d in summary["earlier_deliveries"]] == [3, 4]
    assert [e["steps_done"] for e in RunStore(root).iter_events("run_finished")] == [3, 4, 5]


def _cut_at(monkeypatch, where):
    """Cut the reopen right before its commit (``make-up``: after the made-up children were
    journaled) or right after it (``note``: before the earlier summary is removed)."""
    if where == "make-up":
        original = SyncSchedule.make_up

        def make_up(self, step):
            original(self, step)
            raise KeyboardInterrupt

        monkeypatch.setattr(SyncSchedule, "make_up", make_up)
    else:

        def note(self, message):
            if "trains on to" in message:
                raise KeyboardInterrupt

        monkeypatch.setattr(Progress, "note", note)


@pytest.mark.parametrize("where", ["make-up", "note"])
def test_a_reopen_cut_short_is_done_again_by_a_plain_resume(reference, tmp_path, monkeypatch, where):
    six, full = reference
    root = tmp_path / "four"
    _run(root, 4)
    with monkeypatch.context() as patched:
        _cut_at(patched, where)
        with pytest.raises(KeyboardInterrupt):
            pbtnas.resume(str(root), steps=6)
    summary = pbtnas.resume(str(root))  # config.yaml already says 6
    assert summary["steps_done"] == 6 and summary["final_metric"] == full["final_metric"]
    assert fitness_trace(root) == fitness_trace(six)
    assert _children(root) == _children(six)  # what the cut attempt journaled is voided, not doubled
    assert len(list(RunStore(root).iter_events("run_extended"))) == 1
    assert [d["steps_done"] for d in summary["earlier_deliveries"]] == [4]


def test_async_runs_train_on_too(tmp_path, capsys):
    root = tmp_path / "async"
    first = _run(root, 3, mode="async")
    assert main(["resume", str(root), "--steps", "5", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["steps_done"] == 5
    summary = RunStore(root).read_summary()
    assert summary["steps"] == 5 and summary["earlier_deliveries"][0]["best_uid"] == first["best_uid"]
    steps = {}
    for step, slot, _uid, _ in fitness_trace(root):
        steps.setdefault(slot, []).append(step)
    assert all(sorted(s) == [0, 1, 2, 3, 4] for s in steps.values())  # each slot's steps continue
    uids = [uid for _, _, uid, _ in _children(root)]
    assert len(uids) == len(set(uids))
    assert main(["status", str(root)]) == 0
    capsys.readouterr()


def test_bohb_runs_are_refused_with_one_line(tmp_path, capsys):
    pytest.importorskip("optuna")
    root = tmp_path / "bohb"
    _run(root, 4, algorithm="bohb", bohb_eta=2)
    assert main(["resume", str(root), "--set", "steps=6", "--quiet"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "error: a bohb run cannot change steps (4 -> 6): its budget and Hyperband brackets follow from them; start a new run to search longer"
    ]
    assert main(["resume", str(root), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "the run had finished after 4 steps" in err and "--set steps=N" not in err


def test_the_new_delivery_is_what_export_reads(tmp_path):
    task = {"name": "classification", "dataset": "digits", "width": 4, "cells": 2, "batch_size": 32, "batches_per_step": 3}
    root = tmp_path / "run"
    pbtnas.run({"task": task}, out=str(root), population=4, steps=2, seed=2, backend="inprocess", loggers=["none"])
    summary = pbtnas.resume(str(root), steps=3)
    info = pbtnas.export_run(str(root), str(tmp_path / "exported"))
    member = info["member"]
    assert member["uid"] == summary["best_uid"] and member["steps_done"] == 3 and member["checkpoint"] == "final/member.pt"
    assert pbtnas.load(str(tmp_path / "exported")) is not None


def test_a_damaged_checkpoint_stops_the_reopen_before_anything_is_written(tmp_path, capsys):
    root = tmp_path / "run"
    _run(root, 3)
    manifest = RunStore(root).read_manifest()
    damaged = root / manifest["members"][1]["checkpoint"]
    damaged.write_bytes(damaged.read_bytes()[:-10])
    before = {name: (root / name).read_bytes() for name in ("config.yaml", "journal.jsonl", "population.json", "summary.json")}
    assert main(["resume", str(root), "--set", "steps=5", "--quiet"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: checkpoint {damaged} of member {manifest['members'][1]['uid']} is damaged") and "--skip-damaged" in line
    assert {name: (root / name).read_bytes() for name in before} == before
    assert main(["resume", str(root), "--set", "steps=5", "--skip-damaged", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["steps_done"] == 5
    [skipped] = RunStore(root).iter_events("checkpoint_skipped")
    assert skipped["slot"] == 1 and skipped["restarts"] == "fresh weights"


def test_a_reopened_run_stopped_mid_way_reads_as_stopped_and_resumes(reference, tmp_path, capsys):
    from run_helpers import StopAfter

    from pbtnas.engine.runner import resume_runner

    six, full = reference
    root = tmp_path / "four"
    _run(root, 4)
    runner = resume_runner(root, overrides={"steps": 6}, progress=False)
    runner.observers.append(StopAfter(4))
    with pytest.raises(KeyboardInterrupt):
        runner.run()
    assert not RunStore(root).finished()
    assert main(["status", str(root)]) == 0
    assert "step 5/6 done, stopped" in capsys.readouterr().out
    assert main(["report", str(root), "--out", str(tmp_path / "report")]) == 0
    capsys.readouterr()
    summary = pbtnas.resume(str(root))
    assert summary["steps_done"] == 6 and fitness_trace(root) == fitness_trace(six)
    assert [d["steps_done"] for d in summary["earlier_deliveries"]] == [4]
