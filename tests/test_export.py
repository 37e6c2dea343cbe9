"""Export of the delivered network: files, pbtnas.load, plain-torch loading in a fresh process."""

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from run_helpers import StopAfter  # noqa: E402

from pbtnas.analysis.export import export_run, load
from pbtnas.cli import main
from pbtnas.engine.runner import Runner
from pbtnas.errors import PbtnasError


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    from conftest import TINY_TASK

    from pbtnas.config import config_from_dict

    root = tmp_path_factory.mktemp("export") / "run"
    config = config_from_dict({"task": dict(TINY_TASK), "population": 4, "steps": 2, "seed": 5, "backend": "inprocess"})
    Runner(config, root, progress=False).start().run()
    return root


def test_export_writes_every_file_and_loads_back(finished_run, tmp_path):
    record = export_run(finished_run, tmp_path / "ex")
    for name in ("genome.json", "model.safetensors", "model.torchscript.pt", "export.json", "example_input.pt"):
        assert (tmp_path / "ex" / name).is_file(), name
    summary = json.loads((finished_run / "summary.json").read_text())
    assert json.loads((tmp_path / "ex/genome.json").read_text()) == summary["best_genome"]
    assert record["member"]["uid"] == summary["best_uid"] and record["notes"] == []
    net = load(tmp_path / "ex")
    assert isinstance(net, torch.nn.Module) and not net.training
    x = torch.load(tmp_path / "ex/example_input.pt")
    with torch.no_grad():
        assert torch.allclose(net(x), torch.load(tmp_path / "ex/example_output.pt"), atol=1e-6)
        scripted = load(tmp_path / "ex", prefer="torchscript")
        assert torch.allclose(scripted(x), net(x), atol=1e-6)
    assert net.pbtnas_genome == summary["best_genome"]


def test_torchscript_loads_in_a_fresh_process_without_pbtnas(finished_run, tmp_path):
    export_run(finished_run, tmp_path / "ex")
    with torch.no_grad():
        expected = load(tmp_path / "ex")(torch.load(tmp_path / "ex/example_input.pt"))
    torch.save(expected, tmp_path / "expected.pt")
    script = textwrap.dedent("""
        import sys
        sys.modules["pbtnas"] = None  # any import of pbtnas now fails
        import torch
        net = torch.jit.load(sys.argv[1] + "/ex/model.torchscript.pt")
        x = torch.load(sys.argv[1] + "/ex/example_input.pt", weights_only=True)
        with torch.no_grad():
            y = net(x)
        expected = torch.load(sys.argv[1] + "/expected.pt", weights_only=True)
        assert not any(name.startswith("pbtnas.") for name in sys.modules), "pbtnas was imported"
        print("max-diff", float((y - expected).abs().max()), "pred", y.argmax(1).tolist())
    """)
    proc = subprocess.run([sys.executable, "-I", "-c", script, str(tmp_path)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    diff = float(proc.stdout.split()[1])
    assert diff == 0.0


def test_export_refuses_a_run_without_a_finished_step(tiny_config, tmp_path):
    runner = Runner(tiny_config(), tmp_path / "r", progress=False).start()  # created, never trained
    assert runner.step_done == -1
    with pytest.raises(PbtnasError, match="no finished step"):
        export_run(tmp_path / "r", tmp_path / "ex")
    assert main(["export", str(tmp_path / "r"), "--out", str(tmp_path / "ex")]) == 2


def test_export_of_an_unfinished_run_takes_the_best_so_far(tiny_config, tmp_path):
    runner = Runner(tiny_config(steps=3), tmp_path / "r", progress=False, observers=[StopAfter(0)]).start()
    with pytest.raises(KeyboardInterrupt):
        runner.run()
    record = export_run(tmp_path / "r", tmp_path / "ex")
    assert record["member"]["selection"] == "best-ever"
    assert any("not finished" in n for n in record["notes"])
    assert isinstance(load(tmp_path / "ex"), torch.nn.Module)


def test_export_cli_and_bad_inputs(finished_run, tmp_path, capsys):
    assert main(["export", str(finished_run), "--out", str(tmp_path / "ex"), "--which", "best"]) == 0
    assert "torch.jit.load" in capsys.readouterr().out
    assert main(["export", str(tmp_path / "nothing"), "--out", str(tmp_path / "ex2")]) == 2
    assert "not a pbtnas run directory" in capsys.readouterr().err
    with pytest.raises(PbtnasError, match="not a pbtnas export"):
        load(tmp_path)
    assert main(["export", str(finished_run), "--out", str(tmp_path / "ex3"), "--input-shape", "x"]) == 2
