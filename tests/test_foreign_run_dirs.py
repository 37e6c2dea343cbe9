"""Damaged or foreign run directories (issue 20, items 2 and 3): every path a run's own files
record stays inside the run directory, symbolic links in it are refused, exports are whole or
absent, and a damaged file is one ``error:`` line naming it on every verb (status, report,
export, resume, soup, pbtnas.load), never a traceback and never half-made output. Damaged journal
lines are skipped and counted, never dropped silently."""

import json
import os
import shutil
from pathlib import Path

import pytest
from run_helpers import QUICK

import pbtnas
from pbtnas.cli import main
from pbtnas.errors import CheckpointError, PbtnasError
from pbtnas.rundir.records import JournalRepaired
from pbtnas.rundir.store import RunStore

VERBS = ("status", "report", "export", "resume", "soup")


# no injected fault leaks into or out of a test (the fixture lives in conftest.py)
pytestmark = pytest.mark.usefixtures("no_fault_left")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A finished run, the same run stopped after its second step, and a finished run whose
    members share one architecture (so that it makes soups): the templates, made once."""
    base = tmp_path_factory.mktemp("runs")
    assert main(["run", "simulated", *QUICK, "--out", str(base / "finished")]) == 0
    os.environ["PBTNAS_FAULT"] = "after-step:1:interrupt"
    try:
        assert main(["run", "simulated", *QUICK, "--out", str(base / "stopped")]) == 130
    finally:
        del os.environ["PBTNAS_FAULT"]
    soup = base / "souped"
    pbtnas.run({"task": {"name": "custom_tasks:Single"}}, out=str(soup), population=4, steps=3, backend="inprocess", algorithm="random", seed=3)
    assert main(["soup", str(soup)]) == 0
    return base


def copy(runs, tmp_path, name: str) -> Path:
    run_dir = tmp_path / name
    shutil.copytree(runs / name, run_dir)
    (run_dir / ".pbtnas.lock").unlink(missing_ok=True)
    return run_dir


def verb_args(verb: str, run_dir: Path, out: Path) -> list:
    return {
        "status": ["status", run_dir],
        "report": ["report", run_dir, "--out", out],
        "export": ["export", run_dir, "--out", out],
        "resume": ["resume", run_dir, "--quiet"],
        "soup": ["soup", run_dir],
    }[verb]


def run_cli(capsys, *args) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, [line for line in err.splitlines() if line.strip() and not line.startswith("run directory:")]


def one_error(capsys, *args, names: str) -> str:
    """Exit 2 and exactly one stderr line, an ``error:`` naming ``names``."""
    code, lines = run_cli(capsys, *args)
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, lines)
    assert names in lines[0], lines[0]
    return lines[0]


def flip(path: Path, count: int = 16) -> None:
    data = bytearray(path.read_bytes())
    for i in range(count):
        data[len(data) // 2 + i] ^= 0xFF
    path.write_bytes(bytes(data))


def nothing_left(out: Path) -> None:
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.partial-")]


def edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


# -- item 2: every path stays inside ----------------------------------------------------------------
@pytest.mark.parametrize("kind", ["another run's", "absolute", "a system file"])
def test_a_final_checkpoint_outside_the_run_is_refused(runs, tmp_path, capsys, kind):
    run_dir = copy(runs, tmp_path, "finished")
    other = copy(runs, tmp_path, "stopped")
    bad = {
        "another run's": "../stopped/best/member.pt",
        "absolute": str(other / "best" / "member.pt"),
        "a system file": "/etc/passwd",
    }[kind]
    edit_json(run_dir / "summary.json", lambda s: s.update(final_checkpoint=bad))
    line = one_error(capsys, "export", run_dir, "--out", tmp_path / "x", names="summary.json")
    assert bad in line and "outside the run directory" in line
    nothing_left(tmp_path / "x")


@pytest.mark.parametrize("bad", ["../../finished/final/member.pt", "/etc/passwd"])
def test_a_soup_checkpoint_outside_the_run_is_refused(runs, tmp_path, capsys, bad):
    run_dir = copy(runs, tmp_path, "souped")
    edit_json(run_dir / "soup" / "soup.json", lambda s: s["greedy"].update(checkpoint=bad))
    one_error(capsys, "export", run_dir, "--out", tmp_path / "x", "--which", "soup-greedy", names="soup.json")
    nothing_left(tmp_path / "x")


def test_a_member_checkpoint_outside_the_run_is_refused_on_resume(runs, tmp_path, capsys):
    run_dir = copy(runs, tmp_path, "stopped")
    edit_json(run_dir / "population.json", lambda m: m["members"][0].update(checkpoint="../finished/final/member.pt"))
    one_error(capsys, "resume", run_dir, "--quiet", names="population.json")


@pytest.mark.parametrize("verb", VERBS)
def test_a_linked_summary_is_refused_by_every_verb(runs, tmp_path, capsys, verb):
    run_dir = copy(runs, tmp_path, "finished")
    (run_dir / "summary.json").unlink()
    os.symlink("/etc/passwd", run_dir / "summary.json")
    line = one_error(capsys, *verb_args(verb, run_dir, tmp_path / "x"), names="summary.json")
    assert "symbolic link" in line
    nothing_left(tmp_path / "x")


def test_a_linked_journal_is_never_appended_to(runs, tmp_path, capsys):
    run_dir = copy(runs, tmp_path, "stopped")
    outside = tmp_path / "outside.jsonl"
    os.replace(run_dir / "journal.jsonl", outside)
    os.symlink(outside, run_dir / "journal.jsonl")
    before = outside.read_bytes()
    one_error(capsys, "resume", run_dir, "--quiet", names="journal.jsonl")
    one_error(capsys, "report", run_dir, "--out", tmp_path / "x", names="journal.jsonl")
    assert outside.read_bytes() == before
    with pytest.raises(PbtnasError, match="symbolic link"):
        RunStore(run_dir).append(JournalRepaired(torn_bytes=1))
    assert outside.read_bytes() == before


@pytest.mark.parametrize("verb", ["status", "export", "resume"])
def test_a_linked_manifest_is_refused(runs, tmp_path, capsys, verb):
    run_dir = copy(runs, tmp_path, "stopped")
    outside = tmp_path / "population.json"
    os.replace(run_dir / "population.json", outside)
    os.symlink(outside, run_dir / "population.json")
    one_error(capsys, *verb_args(verb, run_dir, tmp_path / "x"), names="population.json")
    nothing_left(tmp_path / "x")


def test_a_linked_checkpoints_folder_is_refused_on_resume(runs, tmp_path, capsys):
    run_dir = copy(runs, tmp_path, "stopped")
    os.replace(run_dir / "checkpoints", tmp_path / "elsewhere")
    os.symlink(tmp_path / "elsewhere", run_dir / "checkpoints")
    line = one_error(capsys, "resume", run_dir, "--quiet", names="population.json")
    assert "symbolic link" in line


def test_a_linked_best_folder_is_refused_by_export(runs, tmp_path, capsys):
    run_dir = copy(runs, tmp_path, "finished")
    os.replace(run_dir / "best", tmp_path / "elsewhere")
    os.symlink(tmp_path / "elsewhere", run_dir / "best")
    one_error(capsys, "export", run_dir, "--out", tmp_path / "x", "--which", "best", names="best")
    nothing_left(tmp_path / "x")


def test_an_export_that_fails_while_writing_leaves_nothing(runs, tmp_path, monkeypatch):
    """The files are written into a folder next to --out and moved into place at the end: a
    failure on the last file leaves neither --out nor the temporary folder (nor the folders above
    --out that the export created); an earlier export in --out keeps its files."""
    import pbtnas.analysis.export as export

    run_dir = copy(runs, tmp_path, "finished")
    export.export_run(run_dir, tmp_path / "kept")
    kept = {p.name: p.read_bytes() for p in (tmp_path / "kept").iterdir()}

    def refuse(path, data):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(export, "atomic_write_json", refuse)
    for out in (tmp_path / "new" / "deeper" / "x", tmp_path / "kept"):
        with pytest.raises(OSError):
            export.export_run(run_dir, out)
    nothing_left(tmp_path / "new")
    assert {p.name: p.read_bytes() for p in (tmp_path / "kept").iterdir()} == kept


# -- item 3: damaged files, one line, every verb ----------------------------------------------------
SUMMARY_DAMAGE = {
    "truncated": lambda text: text[: len(text) // 2],
    "garbled": lambda text: "\x00\x17" + text[5:],
    "not utf-8": None,  # bytes, below
    "wrong kinds": lambda text: json.dumps({**json.loads(text), "finished": "yes", "best_uid": "seven"}),
}


@pytest.mark.parametrize("verb", VERBS)
@pytest.mark.parametrize("damage", list(SUMMARY_DAMAGE))
def test_a_damaged_summary_is_one_line_on_every_verb(runs, tmp_path, capsys, verb, damage):
    run_dir = copy(runs, tmp_path, "finished")
    path = run_dir / "summary.json"
    if damage == "not utf-8":
        path.write_bytes(b'{"finished": true, "\xff\xfe": 1}')
    else:
        path.write_text(SUMMARY_DAMAGE[damage](path.read_text()))
    line = one_error(capsys, *verb_args(verb, run_dir, tmp_path / "x"), names="summary.json")
    assert "pbtnas resume" in line  # what to do
    nothing_left(tmp_path / "x")


def test_without_a_summary_every_verb_says_not_finished_and_resume_writes_it_again(runs, tmp_path, capsys):
    from pbtnas.analysis.report import load_history

    run_dir = copy(runs, tmp_path, "finished")
    summary = json.loads((run_dir / "summary.json").read_text())
    (run_dir / "summary.json").unlink()
    assert not RunStore(run_dir).finished()
    capsys.readouterr()
    assert main(["status", str(run_dir)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert ", finished" not in first and "stopped" in first and "summary.json is missing" in first
    assert load_history(run_dir).status != "finished"
    code, lines = run_cli(capsys, "export", run_dir, "--out", tmp_path / "x")
    assert code == 0 and any("has not finished" in line for line in lines)
    assert main(["resume", str(run_dir), "--quiet"]) == 0
    again = json.loads((run_dir / "summary.json").read_text())
    assert {k: v for k, v in again.items() if k != "wall_time_s"} == {k: v for k, v in summary.items() if k != "wall_time_s"}


def test_a_flipped_final_checkpoint_is_not_exported(runs, tmp_path, capsys):
    run_dir = copy(runs, tmp_path, "finished")
    flip(run_dir / "final" / "member.pt")
    line = one_error(capsys, "export", run_dir, "--out", tmp_path / "x", names="final/member.pt")
    assert "checksum" in line
    nothing_left(tmp_path / "x")


def test_a_flipped_soup_or_member_checkpoint_is_refused(runs, tmp_path, capsys):
    run_dir = copy(runs, tmp_path, "souped")
    flip(run_dir / "soup" / "greedy.pt")
    one_error(capsys, "export", run_dir, "--out", tmp_path / "x", "--which", "soup-greedy", names="soup/greedy.pt")
    nothing_left(tmp_path / "x")
    member = json.loads((run_dir / "population.json").read_text())["members"][0]["checkpoint"]
    flip(run_dir / member)
    one_error(capsys, "soup", run_dir, names=member)


def test_a_non_utf8_soup_file_is_one_line(runs, tmp_path, capsys):
    run_dir = copy(runs, tmp_path, "souped")
    (run_dir / "soup" / "soup.json").write_bytes(b'{"greedy": {"checkpoint": "\xff"}}')
    one_error(capsys, "export", run_dir, "--out", tmp_path / "x", "--which", "soup-greedy", names="soup.json")
    nothing_left(tmp_path / "x")


JOURNAL_DAMAGE = {
    "not utf-8": lambda line: line.rstrip(b"\n") + b"\xff\xfe\n",
    "fitness a string": lambda line: line.replace(b'"fitness": -', b'"fitness": "x", "was": -', 1),
    "garbled": lambda line: line[: len(line) // 2] + b"\n",
}


def damage_journal_line(run_dir: Path, damage: str) -> int:
    """Damage the first member_trained line of the journal; return its line number."""
    path = run_dir / "journal.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if b'"member_trained"' in line)
    lines[index] = JOURNAL_DAMAGE[damage](lines[index])
    path.write_bytes(b"".join(lines))
    return index + 1


@pytest.mark.parametrize("damage", list(JOURNAL_DAMAGE))
def test_a_damaged_journal_line_is_counted_by_report_and_journaled_by_resume(runs, tmp_path, capsys, damage):
    run_dir = copy(runs, tmp_path, "stopped")
    number = damage_journal_line(run_dir, damage)
    code, lines = run_cli(capsys, "report", run_dir, "--out", tmp_path / "report")
    assert code == 0 and len(lines) == 1 and lines[0].startswith("warning: ") and "journal.jsonl" in lines[0], lines
    assert f"1 damaged line(s) skipped (line {number})" in lines[0]
    code, lines = run_cli(capsys, "resume", run_dir, "--quiet")
    assert code == 0 and len(lines) == 1 and lines[0].startswith("warning: ") and "journal.jsonl" in lines[0], lines
    store = RunStore(run_dir)
    events = list(store.iter_events("journal_damaged"))
    assert [(e["skipped_lines"], e["lines"]) for e in events] == [(1, [number])]


@pytest.mark.parametrize("state", ["empty", "missing"])
def test_an_empty_or_missing_journal_stops_resume(runs, tmp_path, capsys, state):
    run_dir = copy(runs, tmp_path, "stopped")
    if state == "empty":
        (run_dir / "journal.jsonl").write_bytes(b"")
    else:
        (run_dir / "journal.jsonl").unlink()
    line = one_error(capsys, "resume", run_dir, "--quiet", names="journal.jsonl")
    assert state in line
    assert not (run_dir / "journal.jsonl").is_file() or state == "empty"


@pytest.fixture(scope="module")
def exported(runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "x"
    assert main(["export", str(runs / "finished"), "--out", str(out)]) == 0
    return out


def test_load_of_a_damaged_export_raises_pbtnas_errors(exported, tmp_path):
    folder = tmp_path / "x"
    shutil.copytree(exported, folder)
    weights = folder / "model.safetensors"
    flip(weights)
    with pytest.raises(CheckpointError, match="model.safetensors.*checksum"):
        pbtnas.load(str(folder))
    # an export without recorded checksums (an older pbtnas): the library's error is not leaked
    edit_json(folder / "export.json", lambda m: m.pop("sha256"))
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="model.safetensors cannot be read"):
        pbtnas.load(str(folder))
    script = folder / "model.torchscript.pt"
    script.write_bytes(script.read_bytes()[:200])
    from pbtnas.analysis.export import load

    with pytest.raises(CheckpointError, match="model.torchscript.pt cannot be loaded"):
        load(folder, prefer="torchscript")
    (folder / "export.json").write_bytes(b'{"format": "\xff"}')
    with pytest.raises(PbtnasError, match="export.json"):
        pbtnas.load(str(folder))
