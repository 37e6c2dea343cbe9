"""The direction of the final metric: a task declares it (fitness is always higher-is-better),
``pbtnas compare`` tests the right way round with it and says in its table which direction it
used and where that came from."""

import json
from pathlib import Path

import pytest

from pbtnas.analysis.compare import compare, direction_of, metric_direction
from pbtnas.rundir.atomic import atomic_write_json
from pbtnas.rundir.store import RunStore
from pbtnas.tasks import task_class

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "mlp_regression.py"


def _finished(out: Path, algorithm: str, seed: int, value: float) -> None:
    store = RunStore(out / "runs" / f"{algorithm}-s{seed}")
    store.root.mkdir(parents=True)
    atomic_write_json(store.root / "summary.json", {"final_metric": value, "best_fitness": -value, "wall_time_s": 1.0, "finished": True})


def test_a_lower_is_better_final_metric_is_compared_the_right_way(tmp_path):
    """examples/mlp_regression.py reports test_mse with fitness neg_val_mse: the fitness name
    alone says "higher is better"; the task's declaration says lower, and the reference (lower
    test_mse on every seed) is the better one, p = 1/2**3."""
    for seed in range(3):
        _finished(tmp_path, "pbtnas", seed, 0.30 + 0.01 * seed)
        _finished(tmp_path, "random", seed, 0.50 + 0.02 * seed)
    base = {"task": {"name": f"{EXAMPLE}:DiabetesMLP"}, "population": 4, "steps": 2}
    comparison = compare(base, ["pbtnas", "random"], [0, 1, 2], tmp_path)
    assert comparison.higher_is_better is False
    assert comparison.rows()[1]["p_value"] == pytest.approx(0.125)
    table = (tmp_path / "table.md").read_text()
    assert "| algorithm | test_mse (lower is better, declared by the task) |" in table
    assert json.loads((tmp_path / "compare.json").read_text())["direction_source"] == "declared by the task"
    # stated on the command line, the direction wins and the table says so
    stated = compare(base, ["pbtnas", "random"], [0, 1, 2], tmp_path, higher_is_better=True)
    assert stated.rows()[1]["p_value"] == pytest.approx(1.0) and "higher is better, as stated for this comparison" in stated.markdown()


def test_declaration_first_then_the_fitness_then_the_name():
    assert direction_of("neg_val_mse", "test_mse", False) == (False, "declared by the task")
    assert direction_of("-fd_clf", "fd_clf_test", None)[0] is False  # guessed: a negated fitness
    assert direction_of("val_loss_neg", "val_loss_neg", None) == (True, "the final metric is the fitness")
    assert direction_of("neg_val_mse", "test_mse", None) == (True, "guessed from the fitness name (the task does not declare it)")
    assert metric_direction("neg_val_mse", "test_mse", False) is False


@pytest.mark.parametrize(
    "name, higher",
    [("classification", True), ("gan", False), ("rl", True), ("simulated", True)],
)
def test_built_in_tasks_declare_their_direction(name, higher):
    assert task_class(name).final_metric_higher_is_better is higher


def test_examples_declare_their_direction():
    assert task_class(f"{EXAMPLE}:DiabetesMLP").final_metric_higher_is_better is False
    sequence = EXAMPLE.with_name("sequence_classification.py")
    classes = [line.split("(")[0][len("class ") :] for line in sequence.read_text().splitlines() if "TorchTask)" in line]
    assert task_class(f"{sequence}:{classes[0]}").final_metric_higher_is_better is True
