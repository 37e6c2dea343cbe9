"""A user's own network: naming a task by import path, file or plugin; the high-level TorchTask
API; the contract check; hyperparameter genes; bad input as one error line and no run directory."""

from __future__ import annotations

import os
import textwrap

import numpy as np
import pytest
import torch

import pbtnas
from pbtnas.cli import main
from pbtnas.errors import ConfigError, SearchSpaceError, TaskContractError
from pbtnas.rundir.store import RunStore, load_member
from pbtnas.tasks import build_task, task_class, task_reference

HERE = os.path.dirname(__file__)


def test_a_task_is_found_by_import_path_by_file_and_by_plugin(tmp_path, monkeypatch):
    assert task_class("custom_tasks:Good").__name__ == "Good"
    by_file = task_class(f"{os.path.join(HERE, 'custom_tasks.py')}:Good")
    assert by_file.__name__ == "Good" and by_file.__module__.startswith("pbtnas_user_")
    # an installed plugin: a distribution that declares an entry point in the group pbtnas.tasks
    dist = tmp_path / "waves_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: waves-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[pbtnas.tasks]\nwaves = custom_tasks:Good\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert task_class("waves").__name__ == "Good"


def test_a_class_is_recorded_by_a_reference_that_finds_it_again():
    from custom_tasks import Good

    assert task_reference(Good) == "custom_tasks:Good"
    assert task_reference(type(build_task({"name": "classification"}))) == "classification"


def test_torch_task_trains_restores_adam_by_name_and_applies_a_new_learning_rate():
    task = build_task({"name": "custom_tasks:Good"})
    genome = {"block": "linear", "lr": 1e-3}
    state, _ = task.train_step(genome, task.init_state(genome, 1), 0, 5)
    assert state.extra["lr_seen"] == 1e-3 and state.extra["adam_steps_before"] == 0
    # a child that inherited another learning rate: the new lr reaches Adam, the moments stay
    child = dict(genome, lr=1e-2)
    moments = state.optim["model"]["block.weight"]["exp_avg"].clone()
    state2, metrics = task.train_step(child, state, 1, 6)
    assert state2.extra["lr_seen"] == 1e-2 and state2.extra["adam_steps_before"] == 1
    assert not torch.equal(state2.optim["model"]["block.weight"]["exp_avg"], moments)
    assert set(metrics) == {"loss"} and isinstance(metrics["loss"], float)


def test_torch_task_leaves_the_global_random_state_alone_and_is_reproducible():
    task = build_task({"name": "custom_tasks:Good"})
    genome = {"block": "linear", "lr": 1e-2}
    before = torch.get_rng_state(), np.random.get_state()[1].copy()
    a = task.train_step(genome, task.init_state(genome, 1), 0, 5)[0]
    b = task.train_step(genome, task.init_state(genome, 1), 0, 5)[0]
    assert torch.equal(torch.get_rng_state(), before[0]) and np.array_equal(np.random.get_state()[1], before[1])
    assert all(torch.equal(a.models["model"][k], b.models["model"][k]) for k in a.models["model"])


def test_a_diverged_member_is_stopped_not_the_run():
    from pbtnas.errors import MemberDiverged

    task = build_task({"name": "custom_tasks:Good"})
    genome = {"block": "linear", "lr": 1e-2}
    state = task.init_state(genome, 1)
    state.models["model"]["head.weight"].fill_(float("nan"))
    with pytest.raises(MemberDiverged):
        task.train_step(genome, state, 0, 0)


def test_check_task_passes_on_good_tasks_and_examples():
    report = pbtnas.check_task(build_task({"name": "custom_tasks:Good"}))
    assert report.trained and report.owned_tensors == {"block": 2}
    for example in ("mlp_regression.py:DiabetesMLP", "sequence_classification.py:Waveforms"):
        task = build_task({"name": os.path.join(HERE, "..", "examples", example)})
        report = pbtnas.check_task(task)
        assert report.reshaped_by_width  # the layers that read a width gene's output


@pytest.mark.parametrize(
    "name, message",
    [
        ("MisspeltPath", "gene 'block' owns weights but its module path(s) model:block hold no tensor"),
        ("Overlapping", "genes 'block' and 'inner' both own tensor model:block.weight"),
        ("UnownedLayer", "tensor model:block.weight is owned by no gene but exists only in some architectures"),
        ("NotDeterministic", "NotDeterministic.evaluate gave 1.0 and then 2.0"),
        ("TouchesGlobalRng", "TouchesGlobalRng.evaluate changed torch's global random state"),
        ("EvaluatesToADict", "EvaluatesToADict.evaluate must return one number, the fitness (higher is better), got dict {'mse'"),
    ],
)
def test_check_task_names_what_breaks_the_contract(name, message):
    with pytest.raises(TaskContractError, match=message.replace("(", r"\(").replace(")", r"\)")):
        pbtnas.check_task(build_task({"name": f"custom_tasks:{name}"}))


def test_gene_options_and_spaces_are_checked_when_written():
    with pytest.raises(SearchSpaceError, match="write \\['a', 'b'\\], not 'ab'"):
        pbtnas.Gene("x", "abc")
    with pytest.raises(SearchSpaceError, match="duplicate gene name 'x'"):
        pbtnas.SearchSpace([pbtnas.Gene("x", [1, 2]), pbtnas.Gene("x", [3])])
    with pytest.raises(SearchSpaceError, match="cannot own weights"):
        pbtnas.Gene("lr", [0.1], owns_weights=True, kind="hyperparameter")


BAD_TASKS = [
    ("no_such_module:Task", "task module 'no_such_module' cannot be imported"),
    ("custom_tasks:NotATask", "which is not a subclass of pbtnas.Task"),
    ("custom_tasks:Missing", "custom_tasks has no attribute 'Missing'"),
    ("custom_tasks:MissingTrain", "MissingTrain does not implement train"),
    ("custom_tasks:BadSpace", "BadSpace.space must be a pbtnas.SearchSpace"),
    ("custom_tasks:MisspeltPath", "gene 'block' owns weights but its module path(s) model:block hold no tensor"),
    ("custom_tasks:Overlapping", "genes 'block' and 'inner' both own tensor"),
    ("missing_file.py:Task", "missing_file.py' does not exist"),
]


@pytest.mark.parametrize("name, message", BAD_TASKS)
def test_bad_task_is_one_error_line_and_leaves_no_run_directory(tmp_path, capsys, name, message):
    config = tmp_path / "run.yaml"
    config.write_text(f"task:\n  name: {name}\npopulation: 4\nsteps: 2\nbackend: inprocess\n")
    out = tmp_path / "out"
    assert main(["run", str(config), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not out.exists()


def test_gene_options_given_as_a_string_in_a_task_file_is_one_error_line(tmp_path, capsys):
    path = tmp_path / "bad_space.py"
    path.write_text(
        textwrap.dedent("""
        import pbtnas
        class T(pbtnas.TorchTask):
            space = pbtnas.SearchSpace([pbtnas.Gene("x", "abc")])
    """)
    )
    out = tmp_path / "out"
    assert main(["run", "classification", "--set", f"task.name={path}:T", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "options must be a list or tuple" in err[0] and not out.exists()


def test_library_runs_a_class_in_process_and_resumes(tmp_path):
    from custom_tasks import Good
    from run_helpers import StopAfter

    from pbtnas.engine.runner import make_runner

    full = pbtnas.run(Good, out=str(tmp_path / "full"), population=4, steps=3, backend="inprocess")
    assert full["task"] == "custom_tasks:Good" and full["final_metric_name"] == "neg_mse"
    config = pbtnas.config_from_dict({"task": {"name": "custom_tasks:Good"}, "population": 4, "steps": 3, "backend": "inprocess"})
    cut = make_runner(config, tmp_path / "cut", progress=False)
    cut.observers.append(StopAfter(1))
    with pytest.raises(KeyboardInterrupt):
        cut.start().run()
    resumed = pbtnas.resume(str(tmp_path / "cut"))
    assert resumed["final_metric"] == full["final_metric"] and resumed["best_uid"] == full["best_uid"]
    exported = pbtnas.export_run(str(tmp_path / "cut"), str(tmp_path / "exp"))
    net = pbtnas.load(str(tmp_path / "exp"))
    assert exported["task"]["name"] == "custom_tasks:Good" and net(torch.zeros(2, 1)).shape == (2, 1)


def test_a_class_defined_in_a_function_runs_in_process_only(tmp_path):
    from custom_tasks import Good

    class Local(Good):
        pass

    summary = pbtnas.run(Local, out=str(tmp_path / "a"), population=4, steps=2, backend="inprocess")
    assert summary["steps_done"] == 2
    with pytest.raises(ConfigError, match="worker processes cannot import"):
        pbtnas.run(Local, out=str(tmp_path / "b"), population=4, steps=2, backend="local")
    assert not (tmp_path / "b").exists()


def test_hyperparameter_genes_of_the_classification_task_are_off_by_default():
    plain = build_task({"name": "classification", "dataset": "digits"})
    assert "lr" not in plain.space.names and len(plain.space) == 12
    searched = build_task({"name": "classification", "dataset": "digits", "lr_choices": [1e-3, 3e-3], "weight_decay_choices": [0.0, 1e-4]})
    assert searched.space.hyperparameters == ["lr", "weight_decay"]
    genome = {g.name: g.options[-1] for g in searched.space.genes}
    opt = searched.optimizers(searched.member(genome, searched.init_state(genome, 0)))
    assert opt.param_groups[0]["lr"] == 3e-3 and opt.param_groups[0]["weight_decay"] == 1e-4


def test_task_modules_reach_spawned_workers(tmp_path):
    summary = pbtnas.run({"task": {"name": "custom_tasks:Good"}}, out=str(tmp_path / "r"), population=4, steps=2, backend="local", workers=2)
    assert summary["steps_done"] == 2 and summary["best_fitness"] > float("-inf")


def test_a_training_loop_may_start_processes_of_its_own_on_local_workers(tmp_path):
    """A DataLoader with num_workers > 0 inside train() used to fail every member with
    "daemonic processes are not allowed to have children"; its dataset class lives in a task
    file, which only the pbtnas worker has loaded (the loader's processes must find it too)."""
    out = tmp_path / "r"
    task = f"{os.path.join(HERE, 'custom_tasks.py')}:LoaderWorkers"
    summary = pbtnas.run({"task": {"name": task}}, out=str(out), population=4, steps=1, backend="local", workers=2)
    assert summary["steps_done"] == 1 and summary["best_fitness"] > float("-inf")
    store = RunStore(out)
    for member in store.read_manifest()["members"]:
        _, state, _ = load_member(store.absolute(member["checkpoint"]))
        assert state.extra["loader_processes"] == 2


def test_data_drawn_at_import_without_a_seed_is_found_before_a_run_with_workers(tmp_path, capsys):
    """Workers build the task in processes of their own: data drawn at import without a seed
    differs in each, so the check evaluates one state in a freshly started process too."""
    task = f"{os.path.join(HERE, 'custom_tasks.py')}:DataDrawnAtImport"
    assert main(["check", task, "--no-train"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "here and" in err[0] and "in a freshly started process" in err[0] and "without a seed?" in err[0], err
    out = tmp_path / "r"
    assert main(["run", task, "--population", "4", "--steps", "1", "--out", str(out), "--quiet"]) == 2
    assert not out.exists()
    # in one process every member sees the same data: nothing to refuse
    assert main(["check", task, "--no-train", "--set", "backend=inprocess"]) == 0
    # a task whose data is fixed passes, and is checked once per process
    good = f"{os.path.join(HERE, 'custom_tasks.py')}:Good"
    capsys.readouterr()
    assert main(["check", good, "--no-train"]) == 0
    assert "evaluates the same in a freshly started process" in capsys.readouterr().out


def test_evaluate_may_return_any_single_number():
    from pbtnas.tasks.torch_task import _fitness

    for value in (1, 2.5, np.float32(2.5), np.array([2.5]), torch.tensor(2.5), torch.tensor([[2.5]])):
        assert _fitness(value, "T.evaluate") in (1.0, 2.5)
    for value in (None, "2.5", True, torch.tensor([1.0, 2.0]), [2.5]):
        with pytest.raises(TaskContractError, match="T.evaluate must return one number"):
            _fitness(value, "T.evaluate")


def test_lazy_layers_are_initialised_by_one_forward_pass_under_the_builds_seed(tmp_path):
    task = build_task({"name": "custom_tasks:LazyInput"})
    assert pbtnas.check_task(task).trained
    genome = {"block": "linear", "lr": 1e-3}
    first, again, other = task.init_state(genome, 5), task.init_state(genome, 5), task.init_state(genome, 6)
    assert first.models["model"]["inp.weight"].shape == (8, 1)
    assert torch.equal(first.models["model"]["inp.weight"], again.models["model"]["inp.weight"])
    assert not torch.equal(first.models["model"]["inp.weight"], other.models["model"]["inp.weight"])
    config = {"task": {"name": "custom_tasks:LazyInput"}, "p_donor": 1.0}
    summary = pbtnas.run(config, out=str(tmp_path / "r"), population=4, steps=2, backend="inprocess")
    assert summary["best_fitness"] > float("-inf")
    with pytest.raises(TaskContractError, match="lazy .uninitialised. layers: define example_input"):
        build_task({"name": "custom_tasks:LazyWithoutExample"}).init_state(genome, 0)


def test_a_compiled_network_trains_compiled_and_is_stored_by_its_plain_names(tmp_path):
    """build() may return torch.compile(net): train() gets the compiled network, while
    checkpoints, gene paths and the export use the plain module's names."""
    task = f"{os.path.join(HERE, 'custom_tasks.py')}:Compiled"
    assert pbtnas.check_task(task).trained
    out = tmp_path / "r"
    pbtnas.run({"task": {"name": task}, "p_donor": 1.0}, out=str(out), population=4, steps=3, backend="inprocess")
    store = RunStore(out)
    assert list(store.iter_events("child_created"))  # layers were transplanted by their names
    for member in store.read_manifest()["members"]:
        genome, state, _ = load_member(store.absolute(member["checkpoint"]))
        assert state.extra["compiled"] == 1
        assert set(state.models["model"]) >= {"inp.weight", "head.weight"}
        assert not any("_orig_mod" in name for name in list(state.models["model"]) + list(state.optim["model"]))
        assert state.optim["model"]  # Adam moments captured by name
    pbtnas.export_run(str(out), str(tmp_path / "best"))
    net = pbtnas.load(str(tmp_path / "best"))
    assert not hasattr(net, "_orig_mod") and net(torch.zeros(2, 1)).shape == (2, 1)


def test_compare_and_report_take_a_task_file(tmp_path, capsys):
    config = tmp_path / "mine.yaml"
    config.write_text(f"task:\n  name: {os.path.join(HERE, 'custom_tasks.py')}:Good\npopulation: 4\nsteps: 2\nbackend: inprocess\n")
    out = tmp_path / "cmp"
    assert main(["compare", str(config), "--algorithms", "pbtnas,random", "--seeds", "2", "--out", str(out), "--quiet"]) == 0
    table = (out / "table.md").read_text()
    assert "pbtnas" in table and "random" in table
    # a second call reuses the finished runs (the task file is compared by its absolute path)
    assert main(["compare", str(config), "--algorithms", "pbtnas,random", "--seeds", "2", "--out", str(out), "--quiet"]) == 0
    pytest.importorskip("matplotlib")
    assert main(["report", str(out / "runs" / "pbtnas-s0")]) == 0
    assert (out / "runs" / "pbtnas-s0" / "report" / "index.html").is_file()


def test_the_cli_takes_a_task_in_place_of_a_preset_or_config(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(HERE)  # a relative file path is read from the current directory
    quick = ["--population", "4", "--steps", "2", "--backend", "inprocess", "--seed", "1", "--quiet", "--set", "loggers=none"]
    assert main(["run", "custom_tasks.py:Good", *quick, "--out", str(tmp_path / "by-file")]) == 0
    assert main(["run", "custom_tasks:Good", *quick, "--out", str(tmp_path / "by-module")]) == 0
    capsys.readouterr()
    by_file = RunStore(tmp_path / "by-file").read_config()["task"]["name"]
    assert by_file == f"{os.path.join(HERE, 'custom_tasks.py')}:Good"  # recorded absolute for workers
    fitness = [RunStore(tmp_path / d).read_summary()["best_fitness"] for d in ("by-file", "by-module")]
    assert fitness[0] == fitness[1] > float("-inf")
    assert main(["check", "custom_tasks.py:Good"]) == 0
    assert main(["run", "no_such_file.py:Good", *quick, "--out", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: task file ") and "no_such_file.py' does not exist" in err and err.count("\n") == 1
    assert not (tmp_path / "missing").exists()
