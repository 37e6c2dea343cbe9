"""Every report renders for every task: an RL run on a gymnasium environment, and a journal whose
members trained fewer steps than the run (asynchronous runs, failures, children born late); the
page's headline names what ran, and hyperparameter genes are called so."""

import math

import pytest
import yaml

from pbtnas.analysis.report import build_report, load_history
from pbtnas.analysis.report.history import headline
from pbtnas.rundir.records import ChildCreated, MemberCreated, MemberReplaced, MemberTrained, RunStarted, StepDone
from pbtnas.rundir.store import RunStore

GENOME = {"cell.op": "conv", "cell.width": 8, "lr": 0.01}


def _trained(store, step, slot, uid, fitness, **metrics):
    store.append(MemberTrained(step=step, slot=slot, uid=uid, fitness=fitness, metrics=metrics, seconds=0.1, worker="w", attempt=1, peak_rss_mb=1.0))


def _ragged_run(root, task):
    """A hand-written journal of 4 steps where most members have fewer points than steps: one
    trained only steps 0 and 2, one lacks ``frames`` at a step, a leader lacks the spread of
    its episodes, a child is born after step 0 and another after step 2, one step's fittest
    member failed."""
    config = {"task": task, "algorithm": "pbtnas", "population": 4, "steps": 4, "seed": 0}
    root.mkdir()
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    store = RunStore(root)
    store.append(RunStarted(config=config, task={"task": "X", "fitness": "eval_return", "final_metric": "final_return"}, space="s", genes=3))
    for uid in range(4):
        store.append(MemberCreated(step=0, slot=uid, uid=uid, genome=dict(GENOME, **{"cell.width": 8 + uid}), seed=uid))
    spread = dict(eval_returns=[1.0, 2.0, 3.0], eval_return_min=1.0, eval_return_max=3.0, eval_return_std=0.8)
    _trained(store, 0, 0, 0, 2.0, frames=100, **spread)
    _trained(store, 0, 1, 1, 1.0, frames=100, eval_returns=[1.0])
    _trained(store, 0, 2, 2, 0.5, frames=100)
    _trained(store, 0, 3, 3, -1.0, frames=100, eval_returns=5.0)  # not a list: skipped
    store.append(
        ChildCreated(
            step=0,
            slot=3,
            uid=4,
            parents=[0, 1],
            replaced_uid=3,
            genome=GENOME,
            operator="mix",
            primary=0,
            donor=1,
            genes_from_donor=["cell.op", "lr"],
            seed=9,
        )
    )
    store.append(MemberReplaced(step=0, slot=3, old_uid=3, new_uid=4, old_fitness=-1.0))
    store.append(StepDone(step=0, best_fitness=2.0))
    _trained(store, 1, 0, 0, 3.0, frames=200)  # the leader of step 1 without its episodes' spread
    _trained(store, 1, 2, 2, 0.7)  # no frames at this step
    _trained(store, 1, 3, 4, 2.5, frames=200, **spread)
    store.append(StepDone(step=1, best_fitness=3.0))
    _trained(store, 2, 0, 0, -math.inf, frames=300)  # failed
    _trained(store, 2, 1, 1, 4.0, frames=300, **spread)
    _trained(store, 2, 3, 4, 3.5, frames=300, **spread)
    store.append(
        ChildCreated(
            step=2,
            slot=2,
            uid=5,
            parents=[1],
            replaced_uid=2,
            genome=GENOME,
            operator="mutate",
            primary=1,
            donor=None,
            genes_from_donor=[],
            seed=10,
            gene="lr",
            from_=0.1,
            to=0.01,
        )
    )
    store.append(MemberReplaced(step=2, slot=2, old_uid=2, new_uid=5, old_fitness=0.7))
    store.append(StepDone(step=2, best_fitness=4.0))
    _trained(store, 3, 2, 5, 5.0, frames=400, **spread)
    store.append(StepDone(step=3, best_fitness=5.0))
    return root


@pytest.mark.parametrize("task", [{"name": "rl", "env": "Pendulum-v1"}, {"name": "no-such-task"}])
def test_a_journal_with_fewer_points_than_steps_renders(tmp_path, task):
    root = _ragged_run(tmp_path / "run", task)
    history = load_history(root)
    assert history.trained_steps == [0, 1, 2, 3] and len(history.members[5].fitness) == 1
    index = build_report(root)
    page = index.read_text()
    assert index.name == "index.html" and "Population at step 4" in page
    for figure in ("fitness", "lineage", "inheritance", "options", "metrics", "returns"):
        assert (root / "report" / f"{figure}.png").stat().st_size > 1000, figure


def test_the_best_members_band_is_drawn_at_the_best_members_frames(tmp_path, monkeypatch):
    """The min-max band of the population's best lies at the frames of the step's leader, not at
    the x values of whichever member was drawn last."""
    import matplotlib.axes

    root = _ragged_run(tmp_path / "run", {"name": "no-such-task"})
    bands = []
    real = matplotlib.axes.Axes.fill_between

    def spy(self, x, *args, **kwargs):
        if kwargs.get("label") == "its episodes: min-max":
            bands.append([float(v) for v in x])
        return real(self, x, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "fill_between", spy)
    build_report(root)
    # leaders: uid 0 at step 0 (100 frames), uid 0 at step 1 without a spread, uid 1 at step 2
    # (300), uid 5 at step 3 (400)
    assert bands == [[100.0, 300.0, 400.0]]


@pytest.mark.parametrize(
    "config, facts, expected",
    [
        ({"name": "rl", "env": "Pendulum-v1"}, {"env": "Pendulum-v1"}, "rl on gymnasium environment Pendulum-v1"),
        ({"name": "rl", "env": "cheetah-run"}, {}, "rl on dm_control cheetah-run"),
        ({"name": "rl", "env": "my_envs:Maze-v0"}, {}, "rl on environment Maze-v0 (registered by module my_envs)"),
        ({"name": "rl"}, {}, "rl on dm_control cheetah-run"),
        ({"name": "classification", "dataset": "digits"}, {}, "classification on digits"),
        ({"name": "classification", "dataset": "npz", "data_path": "data/own.npz"}, {}, "classification on data file data/own.npz"),
        ({"name": "gan", "dataset": "npz", "data_path": "faces.npz"}, {}, "gan on data file faces.npz"),
        ({"name": "gan"}, {}, "gan on mnist"),
        ({"name": "tasks/charlm.py:CharLM"}, {"task": "CharLM"}, "task CharLM from file tasks/charlm.py"),
        ({"name": "mypkg.tasks:CharLM"}, {}, "task CharLM from module mypkg.tasks"),
        ({"name": "simulated"}, {}, "simulated"),
    ],
)
def test_the_headline_names_what_ran(config, facts, expected):
    from pbtnas.tasks import BUILTIN, task_class
    from pbtnas.tasks.base import options_doc

    # the task's option defaults, as run_info.json records them at start (a viewer imports no task)
    name = config["name"]
    defaults = {row["name"]: row["default"] for row in options_doc(task_class(name).Options)} if name in BUILTIN else {}
    assert headline({"task": config, "description": "DrQ-v2-style agent ... dm_control cheetah-run"}, facts, defaults) == expected


def test_the_page_names_what_ran_and_calls_hyperparameters_so(tmp_path):
    from pbtnas.cli import main

    out = tmp_path / "run"
    argv = ["run", "classification-digits", "--population", "4", "--steps", "2", "--backend", "inprocess", "--quiet", "--out", str(out)]
    tiny = ["task.width=4", "task.cells=1", "task.batches_per_step=2", "task.lr_choices=0.001,0.01"]
    assert main([*argv, *[a for t in tiny for a in ("--set", t)]]) == 0
    page = build_report(out).read_text()
    assert "<td>task</td><td>classification on digits</td>" in page and "()" not in page
    assert "scikit-learn digits" not in page  # the preset's description is not the headline
    assert "<td>lr</td>" in page and "<td>hyperparameter</td>" in page
    assert "<td>weightless</td>" not in page


TINY_RL = [
    "--population",
    "4",
    "--steps",
    "3",
    "--seed",
    "1",
    "--backend",
    "inprocess",
    "--quiet",
    *("--set", "task.hidden_dim=16", "--set", "task.batch_size=16", "--set", "task.frames_per_step=120"),
    *("--set", "task.seed_frames=60", "--set", "task.episode_frames=80", "--set", "task.buffer_capacity=600"),
    *("--set", "task.eval_episodes=2", "--set", "task.final_eval_episodes=1"),
]


@pytest.mark.parametrize(
    "env, words",
    [
        ("Pendulum-v1", "rl on gymnasium environment Pendulum-v1"),
        ("custom_envs:PointMass-v0", "rl on environment PointMass-v0 (registered by module custom_envs)"),
    ],
)
def test_report_of_an_rl_run_on_a_gymnasium_environment(tmp_path, capsys, env, words):
    """Three steps: children born after step 1 have fewer points than the population's best, the
    case where the band used to take the last member's x values and the report failed."""
    pytest.importorskip("gymnasium")
    from pbtnas.cli import main

    out = tmp_path / "run"
    assert main(["run", "rl-cheetah", *TINY_RL, "--set", f"task.env={env}", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    page = (out / "report" / "index.html").read_text()
    assert (out / "report" / "returns.png").stat().st_size > 1000
    assert f"<td>task</td><td>{words}</td>" in page and "cheetah-run" not in page.split("what ran")[0]


def test_sample_grids_are_captioned_by_the_step_they_follow_in_both_namings(tmp_path):
    """``step_NNNN.png`` (counted from 0, as written so far) and ``after_step_NNNN.png`` (the
    number of the step it follows) are both read, in the order of their steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from pbtnas.analysis.report import sample_step

    assert [sample_step(n) for n in ("step_0000.png", "after_step_0001.png", "after_step_0012.png", "grid.png")] == [1, 1, 12, None]
    root = _ragged_run(tmp_path / "run", {"name": "no-such-task"})
    (root / "samples").mkdir()
    for name in ("step_0000.png", "step_0001.png", "after_step_0010.png"):
        plt.imsave(root / "samples" / name, np.zeros((4, 4, 3)))
    assert [p.name for p in load_history(root).samples] == ["step_0000.png", "step_0001.png", "after_step_0010.png"]
    page = build_report(root).read_text()
    captions = [part.split("</figcaption>")[0] for part in page.split("<figcaption class='muted'>")[1:]]
    assert captions == ["after step 1", "after step 2", "after step 10"]
