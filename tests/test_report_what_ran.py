"""The report and ``pbtnas status`` say what ran: the task options that differ from the preset
the run started from (or from the task's defaults for a config without a preset)."""

from pbtnas.analysis.report import build_report
from pbtnas.analysis.report.history import what_ran
from pbtnas.cli import main
from pbtnas.tasks.presets import get_preset

RUN = [
    "run",
    "simulated",
    "--population",
    "4",
    "--steps",
    "2",
    "--seed",
    "1",
    "--backend",
    "inprocess",
    "--quiet",
    "--set",
    "task.step_seconds=0.01",
    "--set",
    "task.width=4",
]


def test_status_and_report_show_the_options_changed_from_the_preset(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*RUN, "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["status", str(out)]) == 0
    status = capsys.readouterr().out
    assert "what ran: preset simulated with width=4 (preset: 8), step_seconds=0.01 (preset: 0.2)" in status
    page = build_report(out).read_text()
    assert "what ran: task options changed from preset simulated" in page
    assert "step_seconds = 0.01 (preset: 0.2)" in page and "width = 4 (preset: 8)" in page


def test_another_environment_is_named_against_the_preset():
    config = get_preset("rl-cheetah")
    config["task"]["env"] = "hopper-hop"
    ran = what_ran(config)
    assert ran.base == "preset rl-cheetah" and ran.changes == [("env", "hopper-hop", "cheetah-run")]
    assert what_ran(get_preset("rl-walker")).text() == "preset rl-walker, unchanged"
    # a config of its own is told against the task's defaults recorded at start (run_info.json);
    # without a record nothing is imported to find them
    ran = what_ran({"task": {"name": "simulated", "width": 4}}, {"width": 8, "step_seconds": 0.2})
    assert ran.base == "the simulated task's defaults" and ran.changes == [("width", 4, 8)]
    assert what_ran({"task": {"name": "simulated", "width": 4}}).text() == ""
    assert what_ran({"task": {"name": "no-such-task", "x": 1}}).text() == ""
