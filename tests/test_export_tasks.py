"""Export is generic over tasks: the deployable module of every task converts to TorchScript with
the same outputs (a classifier predicts, a generator samples images, an agent acts), and a whole
run of each task reports and exports (slow)."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from run_helpers import GAN_TINY, RL_TINY

from pbtnas.analysis.export import example_input, export_run, load, to_torchscript
from pbtnas.errors import ConfigError

TASKS = {
    "classification": dict(name="classification", dataset="digits", width=4, cells=2, batch_size=32, batches_per_step=3),
    "rl": {"name": "rl", **RL_TINY, "final_eval_episodes": 1},
    "gan": {"name": "gan", **GAN_TINY},
}


def _task_or_skip(config):
    from pbtnas.tasks import build_task

    try:
        task = build_task(config)
        if config["name"] == "rl":
            task.env()
    except ConfigError as exc:
        pytest.skip(f"task {config['name']!r} is not available here: {exc}")
    except ImportError as exc:
        pytest.skip(f"task {config['name']!r} needs a dependency that is missing: {exc}")
    return task


@pytest.mark.parametrize("name", sorted(TASKS))
def test_deployable_module_converts_to_torchscript(name):
    task = _task_or_skip(TASKS[name])
    genome = task.space.random_genome(np.random.default_rng(1))
    module = task.build_module(genome, task.init_state(genome, 0)).eval()
    x = example_input(task, module)
    scripted, method = to_torchscript(module, x)
    with torch.no_grad():
        y, z = module(x), scripted(x)
    assert torch.allclose(y, z, atol=1e-5), method
    if name == "classification":
        assert y.shape == (2, 10)  # logits: the classifier predicts
    elif name == "gan":
        assert y.dim() == 4 and y.shape[0] == 2 and y.abs().max() <= 1.0  # tanh images: the generator samples
    elif name == "rl":
        assert y.shape == (2, module.action_dim)  # within the action bounds: the agent acts
        assert torch.all(y >= module.action_low - 1e-6) and torch.all(y <= module.action_high + 1e-6)


FRESH = textwrap.dedent("""
    import sys
    sys.modules["pbtnas"] = None
    import torch
    net = torch.jit.load(sys.argv[1] + "/model.torchscript.pt")
    x = torch.load(sys.argv[1] + "/example_input.pt", weights_only=True)
    expected = torch.load(sys.argv[1] + "/example_output.pt", weights_only=True)
    with torch.no_grad():
        print(float((net(x) - expected).abs().max()))
""")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["rl", "gan"])
def test_run_report_export_of_each_task(name, tmp_path):
    from pbtnas.analysis.report import build_report, load_history
    from pbtnas.config import config_from_dict
    from pbtnas.engine.runner import Runner

    _task_or_skip(TASKS[name])
    config = config_from_dict({"task": dict(TASKS[name]), "population": 4, "steps": 2, "seed": 1, "backend": "inprocess"})
    root = tmp_path / "run"
    Runner(config, root, progress=False).start().run()
    page = build_report(root).read_text()
    h = load_history(root)
    assert h.status == "finished" and (root / "report/fitness.png").is_file()
    if name == "rl":
        assert "Returns and training metrics" in page
    if name == "gan" and h.samples:
        assert "Samples of the best member" in page
    export_run(root, tmp_path / "ex")
    proc = subprocess.run([sys.executable, "-I", "-c", FRESH, str(tmp_path / "ex")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert float(proc.stdout.split()[-1]) <= 1e-6
    assert isinstance(load(tmp_path / "ex"), torch.nn.Module)
