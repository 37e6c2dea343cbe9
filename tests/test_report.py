"""``pbtnas report``: history and lineage rebuilt from the journal, figures, and the page for
finished, stopped, never-trained and older runs."""

import json
import shutil
import time

import pytest
from run_helpers import StopAfter  # noqa: E402

from pbtnas.analysis.report import build_report, load_history
from pbtnas.cli import main
from pbtnas.engine.runner import Runner
from pbtnas.errors import PbtnasError
from pbtnas.rundir.store import RunStore

FIGURES = ("fitness.png", "lineage.png", "inheritance.png", "options.png", "architecture.png", "metrics.png")


def _config(**overrides):
    from conftest import TINY_TASK

    from pbtnas.config import config_from_dict

    data = {"task": dict(TINY_TASK), "population": 4, "steps": 3, "seed": 7, "backend": "inprocess"}
    data.update(overrides)
    return config_from_dict(data)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("report") / "run"
    Runner(_config(), root, progress=False).start().run()
    return root


def test_history_rebuilds_lineage_and_population(finished_run):
    h = load_history(finished_run)
    events = RunStore(finished_run).events()
    assert h.status == "finished" and h.steps_done == 3 and h.notes == []
    children = [e for e in events if e["event"] == "child_created"]
    assert [c.uid for c in h.children] == [e["uid"] for e in children] and len(children) == 2
    for e, child in zip(children, h.children):
        assert (child.primary, child.donor) == tuple(e["parents"])
        assert child.genes_from_donor == e["genes_from_donor"] and child.born_step == e["step"]
        assert h.members[e["replaced_uid"]].removed_step == e["step"]
    for step in range(3):
        trained = sorted(e["uid"] for e in events if e["event"] == "member_trained" and e["step"] == step)
        assert sorted(m.uid for m in h.population_at(step)) == trained
    counts = h.option_counts()
    assert set(counts) == set(h.gene_names) and all(sum(c.values()) == 4 for per in counts.values() for c in per)
    best = h.best_per_step()
    assert [b[0] for b in best] == [0, 1, 2] and all(b[2] >= b[1] for b in best)
    assert h.best_genome() == json.loads((finished_run / "summary.json").read_text())["best_genome"]


def test_report_writes_page_and_every_figure(finished_run, tmp_path):
    index = build_report(finished_run, tmp_path / "rep")
    page = index.read_text()
    for name in FIGURES:
        assert (tmp_path / "rep" / name).stat().st_size > 1000, name
        assert f'src="{name}"' in page
    assert "finished: 3/3 steps" in page and "test_accuracy" in page
    h = load_history(finished_run)
    for child in h.children:  # the lineage table names each child's donor genes
        assert all(g in page for g in child.genes_from_donor)


def test_report_of_a_stopped_run_says_so(tmp_path):
    root = tmp_path / "r"
    runner = Runner(_config(steps=4), root, progress=False, observers=[StopAfter(1)]).start()
    with pytest.raises(KeyboardInterrupt):
        runner.run()
    later = time.time() + 3600
    h = load_history(root, now=later)
    assert h.status == "stopped" and h.steps_done == 2 and "pbtnas resume" in h.status_text
    assert load_history(root).status == "running"  # the journal just moved
    page = build_report(root).read_text()
    assert "2/4 steps done" in page and (root / "report/fitness.png").is_file()


def test_report_of_a_run_that_never_trained(tmp_path):
    root = tmp_path / "r"
    Runner(_config(), root, progress=False).start()
    h = load_history(root, now=time.time() + 3600)
    assert h.status == "not-started" and h.steps_done == 0
    page = build_report(root).read_text()
    assert "no step has finished yet" in page and "no member has finished a step yet" in page
    assert not (root / "report/fitness.png").exists() and (root / "report/architecture.png").exists() is False


def test_report_of_an_older_run_without_journal_fields(finished_run, tmp_path):
    root = tmp_path / "old"
    shutil.copytree(finished_run, root)
    events = [json.loads(line) for line in open(root / "journal.jsonl")]
    with open(root / "journal.jsonl", "w") as fh:  # an older writer: no run_started, no genomes
        for e in events:
            if e["event"] == "run_started":
                continue
            e.pop("genome", None)
            fh.write(json.dumps(e) + "\n")
        fh.write('{"event": "member_trai')  # a torn last line
    (root / "summary.json").unlink()
    h = load_history(root, now=time.time() + 3600)
    assert h.status == "stopped"
    assert any("older pbtnas" in n for n in h.notes)
    assert build_report(root).is_file()
    (root / "journal.jsonl").unlink()  # no journal at all: the manifest's population
    h = load_history(root, now=time.time() + 3600)
    assert any("no journal" in n for n in h.notes) and len(h.members) == 4
    assert "no journal" in build_report(root).read_text()


def test_report_shows_gan_samples_and_rl_returns(finished_run, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    root = tmp_path / "r"
    shutil.copytree(finished_run, root)
    (root / "samples").mkdir()
    for step in range(12):
        plt.imsave(root / "samples" / f"step_{step:04d}.png", np.random.default_rng(step).random((16, 16, 3)))
    lines = [json.loads(line) for line in open(root / "journal.jsonl")]
    with open(root / "journal.jsonl", "w") as fh:
        for e in lines:
            if e["event"] == "member_trained":
                e["metrics"]["train_return"] = 10.0 * e["step"] + e["slot"]
            fh.write(json.dumps(e) + "\n")
    page = build_report(root).read_text()
    shown = sorted(p.name for p in (root / "report/samples").iterdir())
    assert len(shown) == 8 and "step_0011.png" in shown and "step_0000.png" in shown
    assert "samples/step_0011.png" in page and "Returns and training metrics" in page


def test_report_of_a_mutation_run_marks_mutated_genes(tmp_path):
    root = tmp_path / "m"
    Runner(_config(algorithm="mutation", population=4, steps=4, seed=11), root, progress=False).start().run()
    h = load_history(root)
    assert all(c.operator.startswith("mutation") for c in h.children)
    assert build_report(root).is_file() and (root / "report/inheritance.png").is_file()


def test_report_cli_and_bad_input(finished_run, tmp_path, capsys):
    assert main(["report", str(finished_run), "--out", str(tmp_path / "rep")]) == 0
    assert "report:" in capsys.readouterr().out and (tmp_path / "rep/index.html").is_file()
    assert main(["report", str(tmp_path / "missing")]) == 2
    (tmp_path / "empty").mkdir()
    with pytest.raises(PbtnasError, match="not a pbtnas run directory"):
        load_history(tmp_path / "empty")
