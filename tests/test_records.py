"""Typed run-directory records (pbtnas/rundir/records.py): every journal event the code writes has a
record type, records round-trip, run directories written before the types existed read back
byte for byte, a misspelt field fails before anything is written, and report and status work on
both a fresh and an old run directory. Also: observer hooks and optional backend methods are
declared, not found by name."""

from __future__ import annotations

import ast
import json
import shutil
import typing
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from pbtnas.engine.bohb import ENDED
from pbtnas.rundir import records
from pbtnas.rundir.records import (
    EVENTS,
    BestRecord,
    ChildCreated,
    JournalSchemaError,
    Manifest,
    MemberTrained,
    RunStarted,
    Summary,
    UnknownEvent,
    build_record,
    record_from_json,
)
from pbtnas.rundir.store import RunStore

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "pbtnas"
#: run directories written by pbtnas before the typed records (journal, manifest, best, summary)
OLD = Path(__file__).resolve().parent / "data" / "journal_v0"
OLD_RUNS = sorted(p.name for p in OLD.iterdir())
SIM = {"name": "simulated", "layers": 3, "width": 4, "step_seconds": 0.0, "unevenness": 1.0, "batches_per_step": 2}


# -- the schema covers the code ------------------------------------------------------------------
# mypy checks every writer (``store.append(MemberTrained(...))``): a misspelt or missing field, or
# a value of the wrong type, fails ``make lint``. What is left to check here is the other way round.
def test_every_declared_event_is_written_somewhere():
    source = "\n".join(p.read_text() for p in PACKAGE.rglob("*.py") if p.name != "records.py")
    ended = {cls.__name__ for cls in ENDED.values()}  # bohb's trial ends, written through ENDED[end](...)
    unused = sorted(name for name, cls in EVENTS.items() if f"{cls.__name__}(" not in source and cls.__name__ not in ended)
    assert unused == [], "record types no code writes (remove them, or write them)"


# -- round trip ----------------------------------------------------------------------------------
def _sample(hint, seed: int):
    """A JSON value of the kind ``hint`` declares."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, __import__("types").UnionType):
        return _sample(next(a for a in args if a is not type(None)), seed)
    if isinstance(hint, type) and issubclass(hint, records.Codec):
        return {spec.key: _sample(spec.hint, seed + i) for i, spec in enumerate(hint.specs())}
    if hint is bool:
        return seed % 2 == 0
    if hint is int:
        return seed
    if hint is float:
        return seed + 0.5
    if hint is str:
        return f"text{seed}"
    if hint is dict or origin is dict:
        return {"k": _sample(args[1], seed)} if args else {"a": seed, "b": [1, 2]}
    if hint is list or origin is list:
        return [_sample(args[0], seed)] if args else [seed, seed + 1]
    return {"any": seed}


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_every_event_round_trips_through_json(name):
    cls = EVENTS[name]
    fields = {spec.key: _sample(spec.hint, i) for i, spec in enumerate(cls.specs())}
    record = build_record(name, fields, time=123.456)
    assert isinstance(record, cls) and record.event == name and record.time == 123.456
    line = json.dumps(record.to_json())
    again = record_from_json(json.loads(line))
    assert again == record and type(again) is cls and again.to_json() == {"event": name, "time": 123.456, **fields}
    required = {spec.key for spec in cls.specs() if not spec.optional}
    bare = build_record(name, {k: v for k, v in fields.items() if k in required})  # the optional fields may be left out
    assert set(bare.to_json()) == {"event", "time"} | required


def test_manifest_and_best_round_trip():
    best = {"uid": 3, "fitness": 0.5, "step": 1, "genome": {"a": 1}, "slot": 2}
    assert BestRecord.from_dict(best, strict=True).to_dict() == best
    manifest = json.loads((OLD / "async" / "population.json").read_text())
    typed = Manifest.from_dict(manifest, strict=True)
    assert typed.mode == "async" and typed.members[0].uid == manifest["members"][0]["uid"]
    assert typed.best.uid == manifest["best"]["uid"] and typed.checkpoints
    assert json.dumps(typed.to_dict()) == json.dumps(manifest)


# -- run directories written before the typed records --------------------------------------------
@pytest.mark.parametrize("run", OLD_RUNS)
def test_an_old_run_directory_reads_back_byte_for_byte(run):
    folder = OLD / run
    lines = (folder / "journal.jsonl").read_text().splitlines()
    assert lines
    for line in lines:
        data = json.loads(line)
        record = record_from_json(data)
        assert type(record) is EVENTS[data["event"]] and not record.extra
        assert json.dumps(record.to_json()) == line  # same keys, same order, same values
        # and what the old code wrote is exactly what the schema lets the new code write
        assert build_record(data["event"], {k: v for k, v in data.items() if k not in ("event", "time")}, data["time"]).to_json() == data
    for name, kind in (("population.json", Manifest), ("best/best.json", BestRecord), ("summary.json", Summary)):
        text = (folder / name).read_text()
        # summary.json gained keys over the versions (diverged_steps): read as an older one, leniently
        assert json.dumps(kind.from_dict(json.loads(text), strict=kind is not Summary).to_dict(), indent=2) + "\n" == text
    store = RunStore(folder)
    assert [r.to_json() for r in store.records()] == store.events()


def test_an_old_style_line_missing_fields_reads_with_defaults(tmp_path):
    """Lines as an older pbtnas wrote them: no genome or operator record on a child, no metrics, no time."""
    run = tmp_path / "old"
    shutil.copytree(OLD / "sync", run)
    old_lines = [
        {"event": "child_created", "time": 2e9, "step": 2, "slot": 1, "uid": 90, "parents": [0, 2]},
        {"event": "member_trained", "step": 2, "slot": 1, "uid": 90, "fitness": 0.25},
        {"event": "member_created", "time": 2e9, "slot": 5, "uid": 91},
    ]
    with open(run / "journal.jsonl", "a") as fh:
        for line in old_lines:
            fh.write(json.dumps(line) + "\n")
    child, trained, created = RunStore(run).records()[-3:]
    assert isinstance(child, ChildCreated) and child.genome is None and child.operator is None and child.primary is None and child.mode is None
    assert child.to_json() == old_lines[0]  # nothing invented on the way back
    assert isinstance(trained, MemberTrained) and trained.time is None and trained.metrics is None and trained.worker is None
    assert created.seed is None and created.genome is None and created.step is None

    from pbtnas.analysis.report.history import load_history

    history = load_history(run)
    new = history.members[90]
    assert new.parents == [0, 2] and new.primary == 0 and new.donor == 2  # taken from parents, as before
    assert new.operator == "?" and new.fitness == {2: 0.25} and new.metrics == {2: {}}
    assert any("older pbtnas" in note for note in history.notes)


def test_unknown_fields_and_events_of_a_newer_version_are_kept(tmp_path):
    store = RunStore(tmp_path)
    store.append(records.BestUpdated(step=0, uid=1, fitness=0.5))
    newer = [
        {"event": "best_updated", "time": 5.0, "step": 1, "uid": 2, "fitness": 0.75, "margin": 0.25},
        {"event": "pool_drained", "time": 6.0, "nodes": ["a", "b"]},
    ]
    with open(store.journal_path, "a") as fh:
        for line in newer:
            fh.write(json.dumps(line) + "\n")
    first, second, third = store.records()
    assert second.fitness == 0.75 and second.extra == {"margin": 0.25} and second.to_json() == newer[0]
    assert second.get("margin") == 0.25 and second.get("fitness") == 0.75
    assert isinstance(third, UnknownEvent) and third.event == "pool_drained" and third.extra == {"nodes": ["a", "b"]}
    assert third.to_json() == newer[1]
    assert [type(r).__name__ for r in store.iter_records(records.BestUpdated)] == ["BestUpdated", "BestUpdated"]


# -- writing is checked ---------------------------------------------------------------------------
def _journal_text(store: RunStore) -> str:
    return store.journal_path.read_text() if store.journal_path.exists() else ""


def test_a_mistyped_value_or_a_non_record_fails_before_anything_is_written(tmp_path):
    """mypy catches a misspelt or missing field where the record is built; what it cannot see (a
    value typed Any, a dict instead of a record) is refused by the store before it writes."""
    store = RunStore(tmp_path)
    good = dict(step=0, slot=1, uid=1, fitness=0.5, metrics={}, seconds=0.1, worker="w", attempt=1, peak_rss_mb=10.0)
    line = store.append(MemberTrained(**good))
    assert line["event"] == "member_trained" and isinstance(line["time"], float) and "trial" not in line
    before = _journal_text(store)
    anything: typing.Any = "1"
    with pytest.raises(JournalSchemaError, match="field 'uid' is str"):
        store.append(MemberTrained(**{**good, "uid": anything}))
    with pytest.raises(TypeError, match="takes a journal record"):
        store.append({"event": "member_trained", **good})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="takes a journal record"):
        store.append(UnknownEvent(name="pool_drained"))
    with pytest.raises(TypeError, match="fitnes"):
        MemberTrained(**good, fitnes=0.5)  # type: ignore[call-arg]
    assert _journal_text(store) == before
    assert issubclass(JournalSchemaError, TypeError)


def test_manifest_best_and_summary_writes_are_checked(tmp_path):
    store = RunStore(tmp_path)
    manifest = Manifest.from_dict(json.loads((OLD / "sync" / "population.json").read_text()))
    manifest = replace(manifest, members=[replace(m, checkpoint=None) for m in manifest.members], checkpoints=None)
    store.write_manifest(manifest)
    assert store.read_manifest_record().step_done == manifest.step_done and store.read_manifest()["checkpoints"] == {}
    anything: typing.Any = "1"
    with pytest.raises(JournalSchemaError, match="step_done"):
        store.write_manifest(replace(manifest, step_done=anything))
    with pytest.raises(JournalSchemaError, match=r"members.*\[0\].*'init_seed'"):
        store.write_manifest(replace(manifest, members=[replace(m, init_seed=anything) for m in manifest.members]))
    source = tmp_path / "m.pt"
    source.write_bytes(b"x")
    with pytest.raises(JournalSchemaError, match="'genome'"):
        store.save_best(source, BestRecord(uid=1, fitness=0.5, step=0, genome=anything))
    assert not store.best_dir.exists()
    store.save_best(source, BestRecord(uid=1, fitness=0.5, step=0, genome={"a": 1}, slot=0))
    assert store.read_best_record() == BestRecord(uid=1, fitness=0.5, step=0, genome={"a": 1}, slot=0)
    summary = Summary.from_dict({**json.loads((OLD / "sync" / "summary.json").read_text()), "diverged_steps": 0.0})
    with pytest.raises(JournalSchemaError, match="'best_uid'"):
        store.write_summary(replace(summary, best_uid=anything))
    assert not (tmp_path / "summary.json").exists()
    store.write_summary(summary)
    assert store.read_summary_record() == summary


# -- report and status -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fresh_run(tmp_path_factory):
    from pbtnas.config import config_from_dict
    from pbtnas.engine.runner import make_runner

    run = tmp_path_factory.mktemp("records") / "run"
    config = config_from_dict({"task": dict(SIM), "population": 4, "steps": 2, "seed": 5, "backend": "inprocess", "loggers": "none"})
    make_runner(config, run, progress=False).start().run()
    return run


def test_a_fresh_run_is_written_through_the_record_types(fresh_run):
    store = RunStore(fresh_run)
    typed = store.records()
    assert isinstance(typed[0], RunStarted) and typed[0].genes == 6
    assert all(type(r) is EVENTS[r.event] and not r.extra for r in typed)
    assert [r.to_json() for r in typed] == store.events()
    assert store.read_manifest_record().finished and store.read_best_record().uid == store.read_best()["uid"]
    summary = store.read_summary_record()
    assert summary is not None and not summary.extra and not summary.absent and summary.to_dict() == store.read_summary()


@pytest.mark.parametrize("run", ["fresh", *OLD_RUNS])
def test_status_and_history_read_a_run_directory(run, fresh_run, tmp_path, capsys):
    from pbtnas.analysis.report.history import load_history
    from pbtnas.cli import main

    folder = fresh_run if run == "fresh" else OLD / run
    assert main(["status", str(folder)]) == 0
    out = capsys.readouterr().out
    manifest = json.loads((folder / "population.json").read_text())
    assert f"step {manifest['step_done'] + 1}/{manifest['steps']} done, finished" in out
    assert f"best so far: member {manifest['best']['uid']} " in out
    assert len([line for line in out.splitlines() if line.split()[:1] and line.split()[0].isdigit()]) == len(manifest["members"])
    history = load_history(folder)
    assert history.status == "finished" and history.steps_done == manifest["step_done"] + 1
    trained = [e for e in RunStore(folder).events() if e["event"] == "member_trained"]
    assert sum(len(m.fitness) for m in history.members.values()) == len({(e["uid"], e["step"]) for e in trained})
    children = [e for e in RunStore(folder).events() if e["event"] == "child_created"]
    for e in children:
        member = history.members[e["uid"]]
        assert member.parents == e["parents"] and member.operator == e["operator"] and member.born_step == e["step"]
        assert "lambda" not in e or member.details["lambda"] == e["lambda"]


def test_the_report_renders_an_old_run_directory(tmp_path, capsys):
    from pbtnas.cli import main

    run = tmp_path / "run"
    shutil.copytree(OLD / "no-mixing", run)
    assert main(["report", str(run), "--out", str(tmp_path / "report")]) == 0
    page = (tmp_path / "report" / "index.html").read_text()
    assert "Lineage" in page and "no donor; perturbed" in page


# -- observers and backends: declared, not looked up by name ---------------------------------------
def _notified_hooks() -> set[str]:
    hooks = set()
    for path in (PACKAGE / "engine").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "_notify" and node.args:
                assert isinstance(node.args[0], ast.Constant), f"{path}: a hook name that is not a literal"
                hooks.add(node.args[0].value)
    return hooks


def test_observer_hooks_are_the_declared_ones():
    from pbtnas.engine.loggers import LOGGERS, MetricLogger
    from pbtnas.engine.observers import HOOKS, RunObserver

    assert _notified_hooks() == set(HOOKS) == {"on_member_result", "on_child", "on_step_end", "on_finish"}
    assert issubclass(MetricLogger, RunObserver) and all(issubclass(c, RunObserver) for c in LOGGERS.values())
    base = RunObserver()
    assert base.on_member_result(0, None, None) is None and base.on_finish({}) is None


def test_notify_calls_declared_hooks_only(tmp_path):
    from pbtnas.config import config_from_dict
    from pbtnas.engine.observers import RunObserver
    from pbtnas.engine.runner import Runner

    class Seen(RunObserver):
        def __init__(self):
            self.calls = []

        def on_finish(self, summary):
            self.calls.append(summary)

    class DuckTyped:  # not a RunObserver: hooks it lacks are skipped
        def __init__(self):
            self.calls = []

        def on_finish(self, summary):
            self.calls.append(summary)

    config = config_from_dict({"task": dict(SIM), "population": 4, "steps": 1, "seed": 1, "backend": "inprocess", "loggers": "none"})
    runner = Runner(config, tmp_path / "run", progress=False)
    seen, duck = Seen(), DuckTyped()
    runner.observers.extend([seen, duck])
    runner._notify("on_finish", {"x": 1})
    runner._notify("on_step_end", 0, runner)
    assert seen.calls == duck.calls == [{"x": 1}]
    with pytest.raises(ValueError, match="on_finnish"):
        runner._notify("on_finnish", {})


def test_best_record_reads_like_the_dict_observers_got(tmp_path):
    """runner.best was a dict that observers could index; the BestRecord that replaced it still
    answers best["fitness"], best.get(...) and "slot" in best, read-only."""
    best = BestRecord(uid=3, fitness=0.5, step=1, genome={"g": 1})
    assert (best["fitness"], best["uid"], best["step"], best["genome"]) == (0.5, 3, 1, {"g": 1})
    assert best.get("slot") is None and best.get("slot", -1) == -1 and "slot" not in best and "fitness" in best
    with pytest.raises(KeyError):
        best["slot"]
    with pytest.raises(KeyError):
        best["no_such_key"]
    assert BestRecord(uid=3, fitness=0.5, step=1, genome={}, slot=2)["slot"] == 2
    with pytest.raises(TypeError):
        best["fitness"] = 1.0  # type: ignore[index]

    from pbtnas.config import config_from_dict
    from pbtnas.engine.observers import RunObserver
    from pbtnas.engine.runner import Runner

    class OldStyle(RunObserver):  # an observer written when runner.best was a dict
        def __init__(self):
            self.seen = []

        def on_step_end(self, step, runner):
            if runner.best is not None:
                self.seen.append((runner.best["uid"], runner.best["fitness"], runner.best.get("genome")))

    config = config_from_dict({"task": dict(SIM), "population": 4, "steps": 2, "seed": 1, "backend": "inprocess", "loggers": "none"})
    runner = Runner(config, tmp_path / "run", progress=False)
    observer = OldStyle()
    runner.observers.append(observer)
    runner.start().run()
    assert observer.seen and observer.seen[-1] == (runner.best.uid, runner.best.fitness, runner.best.genome)


def test_optional_backend_methods_have_defaults():
    from pbtnas.backends.base import Backend
    from pbtnas.backends.inprocess import InProcessBackend

    assert InProcessBackend().ready() == 0  # not known: the async runner commits after every result
    assert Backend.ready is InProcessBackend.ready


def test_docs_describe_every_event_and_field():
    text = (ROOT / "docs" / "journal.md").read_text()
    sections = {}
    for part in text.split("\n#### ")[1:]:
        heading, _, body = part.partition("\n")
        for name in EVENTS:
            if f"`{name}`" in heading:
                sections[name] = body.split("\n## ")[0].split("\n### ")[0]
    assert set(sections) == set(EVENTS), f"events without a section in docs/journal.md: {sorted(set(EVENTS) - set(sections))}"
    for name, body in sections.items():
        missing = [spec.key for spec in EVENTS[name].specs() if f"`{spec.key}`" not in body]
        assert not missing, f"docs/journal.md does not describe {name}'s {missing}"
    for kind, title in ((Manifest, "## The manifest"), (BestRecord, "## The best record")):
        body = text.split(title)[1].split("\n## ")[0]
        assert not [spec.key for spec in kind.specs() if f"`{spec.key}`" not in body]


@dataclass(kw_only=True)
class _Probe(records.Entry):
    """A record type for the shape checks' test: one field of each kind they name."""

    count: int
    where: str | None
    owner: BestRecord | None
    marks: list[int] = records.optional()
    seen: dict[str, records.CheckpointEntry] | None = records.optional()
    ratio: float = 0.5


def test_the_shape_checks_take_their_keys_and_kinds_from_the_record_types():
    """A field added to a manifest member or to the manifest is checked (and a member holding it is
    not refused as holding an unknown key) without a line in rundir/checks.py."""
    from pbtnas.rundir import checks
    from pbtnas.rundir.records import MemberEntry

    assert list(checks.MEMBER_KEYS) == [s.key for s in MemberEntry.specs()]
    assert set(checks.MANIFEST_REQUIRED) | set(checks.MANIFEST_OPTIONAL) == {s.key for s in Manifest.specs()}

    assert checks.record_kinds(_Probe) == {
        "count": (int,),
        "where": (str, None),  # a plain field typed X | None may be null
        "owner": (dict, None),  # a nested record is a JSON object
        "marks": (list,),
        "seen": (dict,),  # an optional field is left out, never written as null
        "ratio": (float,),
    }
    assert checks.required_keys(_Probe) == ("count", "where", "owner")
    assert checks.record_kinds(_Probe, ("ratio", "count")) == {"ratio": (float,), "count": (int,)}
