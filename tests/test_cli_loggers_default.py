"""TensorBoard by default: a run from the command line logs there when TensorBoard is installed,
says once where, and keeps the tags consistent; ``loggers=none`` turns it off. Files a user shares
(config, summary, report, export) are created readable by others (0644 under umask 022)."""

import os
import stat

import pytest

from pbtnas.cli import main

RUN = ["run", "simulated", "--population", "4", "--steps", "2", "--seed", "3", "--backend", "inprocess", "--set", "task.step_seconds=0", "--quiet"]


@pytest.fixture()
def umask_022():
    before = os.umask(0o022)
    yield
    os.umask(before)


def test_tensorboard_by_default_with_one_logdir_line(tmp_path, capsys):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    assert main([*RUN, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "tensorboard --logdir" in line]
    assert lines == [f"TensorBoard: tensorboard --logdir {out / 'tensorboard'}"], err
    acc = EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    scalars = set(acc.Tags()["scalars"])
    for slot in range(4):
        assert {f"member/slot{slot:02d}/fitness", f"member/slot{slot:02d}/seconds", f"member/slot{slot:02d}/uid"} <= scalars
    assert {"population/best_ever", "population/fitness_best", "final/neg_test_mse"} <= scalars
    texts = {tag.split("/")[0] for tag in acc.Tags()["tensors"]}
    assert {"best_genome", "final_genome", "config"} <= texts, acc.Tags()["tensors"]
    assert main(["resume", str(out), "--quiet"]) == 0  # a finished run: logs nothing new, one line again
    assert capsys.readouterr().err.count("tensorboard --logdir") == 1


def test_loggers_none_turns_the_default_off(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*RUN, "--set", "loggers=none", "--out", str(out)]) == 0
    assert not (out / "tensorboard").exists() and "tensorboard --logdir" not in capsys.readouterr().err
    assert main([*RUN, "--set", "loggers=none,tensorboard", "--out", str(tmp_path / "r2")]) == 2
    assert "turns every logger off" in capsys.readouterr().err and not (tmp_path / "r2").exists()


def test_a_run_that_cannot_start_leaves_no_directory_even_with_loggers(tmp_path, capsys):
    out = tmp_path / "run"  # TensorBoard is on by default: it must not make the folder before the run starts
    code = main(["run", "classification", "--set", "task.dataset=npz", "--set", "task.data_path=missing.npz", "--out", str(out)])
    assert code == 2 and not out.exists(), capsys.readouterr().err


def test_shared_files_are_0644(tmp_path, capsys, umask_022):
    pytest.importorskip("matplotlib")
    out = tmp_path / "run"
    assert main([*RUN, "--set", "loggers=none", "--out", str(out)]) == 0
    assert main(["report", str(out)]) == 0
    assert main(["export", str(out), "--out", str(tmp_path / "export")]) == 0
    shared = [out / "config.yaml", out / "summary.json", out / "report" / "index.html", *(p for p in (tmp_path / "export").iterdir() if p.is_file())]
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in shared}
    assert all(mode == 0o644 for mode in modes.values()), {k: oct(v) for k, v in modes.items()}
