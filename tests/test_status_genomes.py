"""``pbtnas status`` shows every member's genome decoded (``gene=option``, genes sharing a prefix
grouped), read from the manifest: the same for built-in and user tasks, and without the task's
code (a task file that is gone)."""

import shutil
import textwrap

import pbtnas
from pbtnas.cli import main
from pbtnas.cli.commands.inspect import genome_text
from pbtnas.rundir.store import RunStore


def test_genome_text_is_compact():
    genome = {"cell0.op0": "conv3", "cell0.op1": "skip", "cell1.op0": "zero", "lr": 0.001, "sn": False, "k": (3, 5)}
    assert genome_text(genome) == "cell0[op0=conv3 op1=skip] cell1[op0=zero] lr=0.001 sn=False k=(3,5)"


def _rows(out: str) -> list[str]:
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("slot"))
    return [line for line in lines[start + 1 :] if line[:1].isdigit()]


def test_status_of_a_built_in_run_decodes_genomes(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["run", "simulated", "--population", "4", "--steps", "1", "--backend", "inprocess", "--quiet", "--out", str(out)]
    assert main([*argv, "--set", "task.step_seconds=0.01", "--set", "task.width=4"]) == 0
    capsys.readouterr()
    assert main(["status", str(out)]) == 0
    printed = capsys.readouterr().out
    rows = _rows(printed)
    members = RunStore(out).read_manifest()["members"]
    assert len(rows) == 4 and all(row.endswith(genome_text(m["genome"])) for row, m in zip(rows, members))
    assert "layer0[op=" in rows[0] and "one character per gene" not in printed


def test_status_of_a_user_task_decodes_genomes_without_its_code(tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "my_task.py").write_text(
        textwrap.dedent(
            """
            from custom_tasks import Good


            class Mine(Good):
                pass
            """
        )
    )
    out = tmp_path / "run"
    pbtnas.run(f"{folder / 'my_task.py'}:Mine", out=str(out), population=4, steps=1, backend="inprocess")
    capsys.readouterr()
    shutil.rmtree(folder)  # the task's code is gone: the manifest alone says what each member is
    assert main(["status", str(out)]) == 0
    rows = _rows(capsys.readouterr().out)
    assert len(rows) == 4 and all("block=" in row and " lr=0.0" in row for row in rows), rows
