"""The user-facing tools on a multi-objective run: status lists the front, export takes any member
or picks a front member under a constraint, the report draws the front (issue 23)."""

import json

import pytest
from mo_helpers import make_mo_run

from pbtnas.analysis.front import lineage, pick, read_front
from pbtnas.cli import main


@pytest.fixture(scope="module")
def mo_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("mo") / "run"
    make_mo_run(root, constraints=("params<=2500",))
    return root


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory):
    from conftest import TINY_TASK

    from pbtnas.config import config_from_dict
    from pbtnas.engine.runner import Runner

    root = tmp_path_factory.mktemp("so") / "run"
    Runner(
        config_from_dict({"task": dict(TINY_TASK), "population": 4, "steps": 2, "seed": 1, "backend": "inprocess"}), root, progress=False
    ).start().run()
    return root


def summary_of(run):
    return json.loads((run / "summary.json").read_text())


def test_status_lists_the_front_with_its_objectives(mo_run, capsys):
    assert main(["status", str(mo_run)]) == 0
    out = capsys.readouterr().out
    front = summary_of(mo_run)["pareto_front"]
    assert f"Pareto front: {len(front)} member(s) over fitness:max, params:min, constraints params<=2500" in out
    table = out[out.index("Pareto front") :].splitlines()[1:]
    assert table[0].split() == ["member", "step", "fitness", "params", "final", "fitness", "final", "params", "feasible"]
    rows = {int(line.split()[0]): line.split() for line in table[1:]}
    assert set(rows) == {m["uid"] for m in front}
    for m in front:
        row = rows[m["uid"]]
        assert row[1] == str(m["step"] + 1) and float(row[2]) == pytest.approx(m["objectives"]["fitness"], abs=1e-4)
        assert float(row[3]) == m["objectives"]["params"] and row[-1] == ("yes" if m["feasible"] else "no")


def test_status_of_a_single_objective_run_shows_no_front(plain_run, capsys):
    assert main(["status", str(plain_run)]) == 0
    assert "Pareto front" not in capsys.readouterr().out


def test_export_any_member_with_a_checkpoint(mo_run, tmp_path):
    from pbtnas.analysis.member_export import stored_members
    from pbtnas.rundir.store import RunStore

    stored = stored_members(RunStore(mo_run))
    off_front = sorted(set(stored) - {m["uid"] for m in summary_of(mo_run)["pareto_front"]})
    uid = (off_front or sorted(stored))[0]
    assert main(["export", str(mo_run), "--out", str(tmp_path / "ex"), "--member", str(uid)]) == 0
    meta = json.loads((tmp_path / "ex/export.json").read_text())
    assert meta["member"]["uid"] == uid and meta["member"]["checkpoint"] == stored[uid][1]
    created = [e for e in map(json.loads, (mo_run / "journal.jsonl").read_text().splitlines()) if e.get("uid") == uid and "genome" in e]
    assert meta["genome"] == created[-1]["genome"]


def test_export_of_a_member_without_checkpoint_names_the_available_ones(mo_run, tmp_path, capsys):
    assert main(["export", str(mo_run), "--out", str(tmp_path / "ex"), "--member", "999"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: member 999 has no checkpoint") and "members with one: " in err and len(err.splitlines()) == 1
    assert not (tmp_path / "ex").exists()


def test_pick_exports_the_best_feasible_front_member_by_the_first_objective(mo_run, tmp_path):
    front = summary_of(mo_run)["pareto_front"]
    bound = sorted(m["objectives"]["params"] for m in front)[len(front) // 2]
    feasible = [m for m in front if m["feasible"] and m["final_objectives"]["params"] <= bound]
    expected = max(feasible, key=lambda m: m["final_objectives"]["fitness"])
    assert main(["export", str(mo_run), "--out", str(tmp_path / "ex"), "--pick", f"params<={bound:g}"]) == 0
    meta = json.loads((tmp_path / "ex/export.json").read_text())
    assert meta["member"]["uid"] == expected["uid"] and meta["genome"] == expected["genome"]


@pytest.mark.parametrize(
    "where, says", [("params<=1", "no feasible member of the Pareto front"), ("flops<=5", "--pick names flops"), ("params<<3", "constraint")]
)
def test_pick_refuses_in_one_line(mo_run, tmp_path, capsys, where, says):
    assert main(["export", str(mo_run), "--out", str(tmp_path / "ex"), "--pick", where]) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and len(err.splitlines()) == 1 and not (tmp_path / "ex").exists()


def test_pick_on_a_run_without_front(plain_run, tmp_path, capsys):
    assert main(["export", str(plain_run), "--out", str(tmp_path / "ex"), "--pick", "params<=5"]) == 2
    assert "has no Pareto front" in capsys.readouterr().err


def test_pick_skips_members_the_run_marked_infeasible():
    front = read_front(
        {
            "objectives": [{"name": "fitness", "direction": "max"}, {"name": "params", "direction": "min"}],
            "pareto_front": [
                {"uid": 1, "objectives": {"fitness": 0.9, "params": 90}, "feasible": False},
                {"uid": 2, "objectives": {"fitness": 0.8, "params": 50}, "feasible": True},
                {"uid": 3, "objectives": {"fitness": 0.7, "params": 10}, "feasible": True},
            ],
        }
    )
    assert front is not None
    assert pick(front, "")["uid"] == 2
    assert pick(front, "params<20")["uid"] == 3


def test_lineage_lists_each_ancestor_once_by_generation():
    parents = {7: [5, 3], 5: [1, 3], 3: [0, 1]}
    assert lineage(7, parents) == [[5, 3], [1, 0]]
    assert lineage(5, parents) == [[1, 3], [0]]
    assert lineage(0, parents) == []


def test_report_draws_the_front_hypervolume_and_lineage(mo_run, tmp_path):
    from pbtnas.analysis.report import build_report, load_history

    history = load_history(mo_run)
    page = build_report(mo_run, tmp_path / "report", history=history).read_text()
    assert (tmp_path / "report/front.png").is_file() and (tmp_path / "report/hypervolume.png").is_file()
    front = summary_of(mo_run)["pareto_front"]
    section = page[page.index("<h2>Pareto front</h2>") : page.index("</table>", page.index("<h2>Pareto front</h2>"))]
    assert f"{len(front)} member(s) on the front over fitness (higher is better), params (lower is better)" in section
    for m in front:
        chain = history.ancestors(m["uid"])
        expected = " &lt;- ".join("+".join(map(str, g)) for g in chain) or "initial population"
        assert f"<tr><td>{m['uid']}</td><td>{m['step'] + 1}</td>" in section and expected in section
    # every evaluation of the run is on the figure's grey cloud
    trained = [e for e in map(json.loads, (mo_run / "journal.jsonl").read_text().splitlines()) if e.get("event") == "member_trained"]
    assert len(history.evaluated_objectives()) == len(trained)


def test_ancestors_follow_the_journal_parents(mo_run):
    from pbtnas.analysis.report import load_history

    history = load_history(mo_run)
    child = next(m for m in history.children)
    chain = history.ancestors(child.uid)
    assert chain[0] == child.parents
    assert all(history.members[u].parents == [] or u in history.members for g in chain for u in g)


def test_report_of_a_single_objective_run_has_no_front(plain_run, tmp_path):
    from pbtnas.analysis.report import build_report

    page = build_report(plain_run, tmp_path / "report").read_text()
    assert "Pareto" not in page and "hypervolume" not in page
    assert not (tmp_path / "report/front.png").exists() and not (tmp_path / "report/hypervolume.png").exists()


def test_three_objectives_draw_pairwise_panels(tmp_path):
    from mo_helpers import make_mo_run

    from pbtnas.analysis.report import load_history
    from pbtnas.analysis.report.plots import front_plot

    make_mo_run(tmp_path / "run", steps=1, objectives=["fitness", "params:min", "flops:min"])
    history = load_history(tmp_path / "run")
    assert history.front is not None and history.front.names == ["fitness", "params", "flops"]
    assert front_plot(history, tmp_path / "front.png") is not None
    import matplotlib.image

    height, width = matplotlib.image.imread(tmp_path / "front.png").shape[:2]
    assert width > 2.5 * height  # three panels side by side


def test_compare_reads_a_runs_feasible_front(mo_run):
    from pbtnas.analysis.compare import read_result

    result = read_result("pbtnas", 3, mo_run)
    feasible = [m["final_objectives"] for m in summary_of(mo_run)["pareto_front"] if m["feasible"]]
    assert result.front == feasible and result.finished


def test_a_run_without_its_summary_shows_the_front_kept_in_its_manifest(mo_run, tmp_path):
    """A stopped or running multi-objective run has no summary yet: the report reads the front
    kept so far from the manifest, with the objectives' directions from the run's config."""
    import shutil

    from pbtnas.analysis.report.history import load_history

    stopped = tmp_path / "stopped"
    shutil.copytree(mo_run, stopped)
    (stopped / "summary.json").unlink()
    front = load_history(stopped).front
    assert front is not None
    assert [(o.name, o.direction) for o in front.objectives] == [(o["name"], o["direction"]) for o in summary_of(mo_run)["objectives"]]
    assert {m["uid"] for m in front.members} >= {m["uid"] for m in summary_of(mo_run)["pareto_front"]}
