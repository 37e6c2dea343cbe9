"""Networks no preset has (tests/unusual_networks.py) go through check, search with mixing,
resume and export: tied weights stay tied, integer and boolean buffers keep their dtype (and are
copied, never shrink-perturbed), a frozen layer stays frozen."""

import os

import torch
from run_helpers import StopAfter, fitness_trace

import pbtnas
from pbtnas.engine.runner import Runner
from pbtnas.rundir.store import RunStore, load_member
from pbtnas.tasks import build_task

HERE = os.path.dirname(__file__)
TASK = f"{os.path.join(HERE, 'unusual_networks.py')}:TiedLanguageModel"


def config(task=None, **overrides):
    from pbtnas.config import config_from_dict

    data = {"task": task or {"name": TASK}, "population": 6, "steps": 4, "seed": 4, "backend": "inprocess", "p_donor": 0.5, "loggers": []}
    data["keep_checkpoints"] = 99  # every child's checkpoint as it was made
    data.update(overrides)
    return config_from_dict(data)


def test_the_contract_holds():
    report = pbtnas.check_task(TASK)
    assert report.trained and report.architectures >= 3


def test_search_mixes_keeps_ties_buffers_and_frozen_layers_and_resumes_exactly(tmp_path):
    summary = Runner(config(), tmp_path / "full", progress=False).start().run()
    assert summary["best_fitness"] > float("-inf")
    store = RunStore(tmp_path / "full")
    children = list(store.iter_events("child_created"))
    assert any("mixer" in e["genes_from_donor"] or "layers" in e["genes_from_donor"] for e in children)
    task = build_task({"name": TASK})
    for member in store.read_manifest()["members"]:
        genome, state, _ = load_member(store.absolute(member["checkpoint"]))
        weights = state.models["model"]
        model = task.build_module(genome, state)
        assert model.head.weight is model.embed.weight  # still one tensor after loading a child
        assert torch.equal(weights["head.weight"], weights["embed.weight"])
        assert not model.frozen.weight.requires_grad
        if genome["mixer"] == "masked":
            width = genome["width"]
            assert weights["mixer.order"].dtype == torch.int64 and torch.equal(weights["mixer.order"], torch.arange(width).flip(0))
            assert weights["mixer.mask"].dtype == torch.bool and torch.equal(weights["mixer.mask"], torch.arange(width) % 3 != 0)
            assert weights["mixer.calls"].dtype == torch.int32 and int(weights["mixer.calls"]) > 0
    masked_children = 0
    for child in children:  # as made, before training: transplanted buffers are copies
        genome, state, _ = load_member(store.member_path(child["step"], child["uid"]))
        weights = state.models["model"]
        if genome["mixer"] == "masked":
            masked_children += 1
            assert {weights[k].dtype for k in ("mixer.order", "mixer.mask", "mixer.calls")} == {torch.int64, torch.bool, torch.int32}
            assert int(weights["mixer.calls"]) > 0  # the donor's counter, not 0.4 x it
    assert masked_children
    # interrupted after step 1 and resumed: the same run
    runner = Runner(config(), tmp_path / "cut", progress=False)
    runner.observers.append(StopAfter(1))
    try:
        runner.start().run()
    except KeyboardInterrupt:
        pass
    resumed = Runner.resume(tmp_path / "cut", progress=False).run()
    assert fitness_trace(tmp_path / "cut") == fitness_trace(tmp_path / "full")
    assert resumed["best_genome"] == summary["best_genome"] and resumed["final_metric"] == summary["final_metric"]
    # exported: loads with pbtnas and as TorchScript, and predicts the vocabulary
    pbtnas.export_run(str(tmp_path / "full"), str(tmp_path / "export"))
    tokens = torch.zeros(2, 5, dtype=torch.long)
    assert pbtnas.load(str(tmp_path / "export"))(tokens).shape == (2, 5, 16)
    assert torch.jit.load(str(tmp_path / "export" / "model.torchscript.pt"))(tokens).shape == (2, 5, 16)


def test_export_input_shapes_on_a_token_model_and_a_shape_the_network_refuses(tmp_path, capsys):
    from pbtnas.cli import main

    Runner(config(steps=2), tmp_path / "run", progress=False).start().run()
    # --input-shape on a model of token ids: integer ids in the range of the task's own inputs
    assert main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "e1"), "--input-shape", "7"]) == 0
    x = torch.load(tmp_path / "e1" / "example_input.pt")
    assert x.dtype == torch.int64 and x.shape == (2, 7) and 0 <= int(x.min()) and int(x.max()) < 16
    capsys.readouterr()
    assert main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "e2"), "--input-shape", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: --input-shape dimensions must be at least 1, got '0'"
    good = os.path.join(HERE, "custom_tasks.py") + ":Good"
    Runner(config(task={"name": good}), tmp_path / "good", progress=False).start().run()
    assert main(["export", str(tmp_path / "good"), "--out", str(tmp_path / "e3"), "--input-shape", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: the network does not take the example input (shape (2, 3), torch.float32): RuntimeError")
    assert not (tmp_path / "e3").exists()


def test_an_index_buffer_transplanted_across_widths_is_the_childs_own_and_the_child_runs():
    """A donor's index buffer for 12 channels, sliced to a child of width 8, would index past
    the layer's end; inheritance gives the child the index of its own width instead."""
    from pbtnas.search.operators.mixing import transplant
    from pbtnas.search.operators.shapes import adapt_to_architecture

    task = build_task({"name": TASK})
    narrow = {"width": 8, "rnn": "gru", "mixer": "masked", "layers": 1, "lr": 3e-3}
    wide = dict(narrow, width=12)
    for primary, donor in ((narrow, wide), (wide, narrow)):
        # what mix() does when only the mixer gene is marked: the child keeps the primary's width
        child = task.init_state(primary, 1)
        fresh = task.init_state(primary, 3)
        transplant(task, child, task.init_state(donor, 2), fresh, ["mixer"], 0.4, 0.1)
        adapt_to_architecture(task, child, fresh)
        width = primary["width"]
        weights = child.models["model"]
        assert torch.equal(weights["mixer.order"], torch.arange(width).flip(0))
        assert torch.equal(weights["mixer.mask"], torch.arange(width) % 3 != 0)
        assert weights["mixer.calls"].dtype == torch.int32
        model = task.build_module(primary, child)
        assert model(task.example_input(2)).shape[-1] > 0
