"""``pbtnas export`` stores the example input and output in storage of their own: a task whose
``example_input`` returns a slice of a large tensor does not write that tensor to disk."""

import textwrap

import torch

import pbtnas
from pbtnas.analysis.export import _compact, export_run

TASK = textwrap.dedent(
    """
    import torch
    from custom_tasks import Good

    BIG = torch.randn(100_000, 1)  # 400 kB; the network takes (N, 1)


    class SlicedInput(Good):
        def example_input(self, batch):
            return BIG[:batch]  # a view: its storage is all of BIG
    """
)


def test_example_input_is_saved_compactly(tmp_path):
    (tmp_path / "sliced_task.py").write_text(TASK)
    run = tmp_path / "run"
    pbtnas.run(f"{tmp_path / 'sliced_task.py'}:SlicedInput", out=str(run), population=4, steps=1, backend="inprocess")
    export_run(run, tmp_path / "ex")
    for name in ("example_input.pt", "example_output.pt"):
        assert (tmp_path / "ex" / name).stat().st_size < 4096, name
    x = torch.load(tmp_path / "ex" / "example_input.pt", weights_only=True)
    assert x.shape == (2, 1) and x.untyped_storage().nbytes() == 8


def test_compact_copies_tensors_in_containers():
    big = torch.arange(1000.0)
    out = _compact({"a": (big[:2], [big[5:6]]), "b": 3})
    assert out["b"] == 3 and out["a"][0].untyped_storage().nbytes() == 8 and out["a"][1][0].untyped_storage().nbytes() == 4
    assert torch.equal(out["a"][0], big[:2])
