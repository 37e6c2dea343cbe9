"""End-to-end behaviour of the runner on a tiny real classification search."""

import json

import pytest
import torch
from run_helpers import StopAfter, fitness_trace  # noqa: E402

from pbtnas.engine.runner import Runner
from pbtnas.rundir.store import RunStore, load_member, save_member


def test_run_writes_everything_a_run_must_leave(tiny_config, tmp_path):
    summary = Runner(tiny_config(), tmp_path / "r", progress=False).start().run()
    root = tmp_path / "r"
    for name in ("config.yaml", "journal.jsonl", "population.json", "summary.json", "best/member.pt", "final/member.pt"):
        assert (root / name).exists(), name
    for key in ("algorithm", "seed", "steps_done", "best_fitness", "best_genome", "final_metric"):
        assert key in summary
    assert summary["steps_done"] == 3 and 0.0 <= summary["final_metric"] <= 1.0
    events = [json.loads(line) for line in open(root / "journal.jsonl")]
    assert all("event" in e for e in events)
    children = [e for e in events if e["event"] == "child_created"]
    assert len(children) == 2  # N=4: one child after each of the first two steps, none after the last
    for child in children:
        assert len(child["parents"]) == 2 and "genes_from_donor" in child and isinstance(child["seed"], int)
    genome, state, meta = load_member(root / "best/member.pt")
    assert genome == summary["best_genome"] and "model" in state.models


def test_same_seed_same_result_inprocess_and_local(tiny_config, tmp_path):
    a = Runner(tiny_config(backend="inprocess"), tmp_path / "a", progress=False).start().run()
    b = Runner(tiny_config(backend="local", workers=2), tmp_path / "b", progress=False).start().run()
    assert fitness_trace(tmp_path / "a") == fitness_trace(tmp_path / "b")
    assert a["best_genome"] == b["best_genome"] and a["final_metric"] == b["final_metric"]
    wa, _, _ = load_member(tmp_path / "a/final/member.pt")[1], None, None
    wb = load_member(tmp_path / "b/final/member.pt")[1]
    for k, t in wa.models["model"].items():
        assert torch.equal(t, wb.models["model"][k]), k


def test_different_seed_different_population(tiny_config, tmp_path):
    Runner(tiny_config(seed=1), tmp_path / "a", progress=False).start().run()
    Runner(tiny_config(seed=2), tmp_path / "b", progress=False).start().run()
    assert fitness_trace(tmp_path / "a") != fitness_trace(tmp_path / "b")


def test_resume_after_crash_gives_the_uninterrupted_result(tiny_config, tmp_path):
    full = Runner(tiny_config(steps=4), tmp_path / "full", progress=False).start().run()
    runner = Runner(tiny_config(steps=4), tmp_path / "cut", progress=False)
    runner.observers.append(StopAfter(1))
    with pytest.raises(KeyboardInterrupt):
        runner.start().run()
    assert RunStore(tmp_path / "cut").read_summary() is None
    resumed = Runner.resume(tmp_path / "cut", progress=False).run()
    assert fitness_trace(tmp_path / "cut") == fitness_trace(tmp_path / "full")
    for key in ("best_fitness", "best_genome", "final_metric", "best_uid"):
        assert resumed[key] == full[key], key
    # a finished run resumes to its summary without training again
    assert Runner.resume(tmp_path / "cut", progress=False).run()["final_metric"] == full["final_metric"]


def test_nan_member_gets_minus_inf_is_replaced_and_others_keep_their_work(tiny_config, tmp_path):
    Runner(tiny_config(steps=3), tmp_path / "full", progress=False).start().run()
    runner = Runner(tiny_config(steps=3), tmp_path / "nan", progress=False)
    runner.observers.append(StopAfter(0))
    with pytest.raises(KeyboardInterrupt):
        runner.start().run()
    store = RunStore(tmp_path / "nan")
    manifest = store.read_manifest()
    victim = next(m for m in manifest["members"] if m["born_step"] < 0)
    path = store.absolute(victim["checkpoint"])
    genome, state, meta = load_member(path)
    state.models["model"] = {k: (torch.full_like(v, float("nan")) if v.is_floating_point() else v) for k, v in state.models["model"].items()}
    save_member(path, genome, state, victim["uid"])
    store.write_manifest(store.read_manifest_record())  # a deliberate edit: record its checksum
    Runner.resume(tmp_path / "nan", progress=False).run()
    trained = [e for e in store.iter_events("member_trained") if e["step"] == 1]
    bad = next(e for e in trained if e["uid"] == victim["uid"])
    assert bad["fitness"] == float("-inf") and bad["diverged"]
    replaced = [e for e in store.iter_events("member_replaced") if e["step"] == 1]
    assert [e["old_uid"] for e in replaced] == [victim["uid"]]
    others = {(e["uid"], e["fitness"]) for e in trained if e["uid"] != victim["uid"]}
    reference = {(s_uid, f) for step, _, s_uid, f in fitness_trace(tmp_path / "full") if step == 1}
    assert others <= reference  # every other member's step-1 result is exactly the uninterrupted one
    assert RunStore(tmp_path / "nan").read_summary()["finished"]


def test_truncated_checkpoint_stops_resume_unless_skipped(tiny_config, tmp_path):
    from pbtnas.errors import CheckpointError

    runner = Runner(tiny_config(steps=3), tmp_path / "r", progress=False)
    runner.observers.append(StopAfter(0))
    with pytest.raises(KeyboardInterrupt):
        runner.start().run()
    store = RunStore(tmp_path / "r")
    victim = store.read_manifest()["members"][0]
    path = store.absolute(victim["checkpoint"])
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=str(path)):
        Runner.resume(tmp_path / "r", progress=False)
    summary = Runner.resume(tmp_path / "r", progress=False, skip_damaged=True).run()
    skipped = list(store.iter_events("checkpoint_skipped"))
    assert [e["uid"] for e in skipped] == [victim["uid"]]
    assert not [e for e in store.iter_events("member_trained") if e.get("error")]  # it restarted, fresh
    assert summary["finished"] and summary["best_fitness"] > 0


@pytest.mark.parametrize("algorithm", ["random", "mutation", "no-mixing", "sp-1-0", "sp-0-1", "random-sp"])
def test_every_algorithm_runs(tiny_config, tmp_path, algorithm):
    summary = Runner(tiny_config(algorithm=algorithm), tmp_path / algorithm, progress=False).start().run()
    store = RunStore(tmp_path / algorithm)
    children = list(store.iter_events("child_created"))
    if algorithm in ("random", "random-sp"):
        assert not children
    else:
        assert len(children) == 2
    if algorithm == "random-sp":
        assert len(list(store.iter_events("member_refreshed"))) == 4 * 2
    if algorithm == "mutation":
        assert all(c["operator"].startswith("mutation:") for c in children)
    assert summary["algorithm"] == algorithm


def test_best_last_selection(tiny_config, tmp_path):
    summary = Runner(tiny_config(final_selection="best-last"), tmp_path / "r", progress=False).start().run()
    last = max(m["fitness"] for m in RunStore(tmp_path / "r").read_manifest()["members"])
    assert summary["final_selection"] == "best-last" and summary["best_fitness"] == last


def test_refuses_to_overwrite_a_run(tiny_config, tmp_path):
    from pbtnas.errors import PbtnasError

    Runner(tiny_config(steps=1), tmp_path / "r", progress=False).start().run()
    with pytest.raises(PbtnasError, match="already holds a run"):
        Runner(tiny_config(steps=1), tmp_path / "r", progress=False).start()


@pytest.mark.parametrize("algorithm", ["pbtnas", "mutation", "random-sp"])
def test_every_algorithm_is_deterministic(tiny_config, tmp_path, algorithm):
    a = Runner(tiny_config(algorithm=algorithm, steps=3), tmp_path / "a", progress=False).start().run()
    b = Runner(tiny_config(algorithm=algorithm, steps=3), tmp_path / "b", progress=False).start().run()
    assert fitness_trace(tmp_path / "a") == fitness_trace(tmp_path / "b")
    children = lambda d: [
        (e["uid"], e["parents"], e.get("genes_from_donor"), e["seed"])  # noqa: E731
        for e in RunStore(d).iter_events("child_created")
    ]
    assert children(tmp_path / "a") == children(tmp_path / "b")
    assert a["final_metric"] == b["final_metric"]
