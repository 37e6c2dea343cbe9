"""Synchronous scheduling with ``lookahead``: jobs are handed out longest expected first, the next
step's jobs before the commit, random-sp refreshes ahead of the barrier. Only start times change:
the results, the journal's order and the delivered network equal those of the plain order
(``lookahead: false``: every step submitted in slot order after the commit)."""

import json

import pytest

from pbtnas.config import config_from_dict
from pbtnas.engine.runner import make_runner
from pbtnas.rundir.store import RunStore

SIM = {"name": "simulated", "layers": 3, "width": 4, "step_seconds": 0.2, "unevenness": 1.8, "batches_per_step": 2}


class Arrivals:
    """Observer: the order in which results reach the driver."""

    def __init__(self):
        self.order: list[tuple[int, int]] = []

    def on_member_result(self, step, member, result):
        self.order.append((step, member.uid))


def run(tmp_path, name, **overrides):
    config = config_from_dict({"task": SIM, "population": 8, "steps": 4, "seed": 3, "backend": "inprocess", "loggers": ["none"], **overrides})
    runner = make_runner(config, tmp_path / name, progress=False)
    arrivals = Arrivals()
    runner.observers.append(arrivals)
    summary = runner.start().run()
    store = RunStore(tmp_path / name)
    journal = [
        {k: v for k, v in e.items() if k not in ("time", "seconds", "worker", "peak_rss_mb", "started_early", "metrics")}
        for e in store.events()
        if e["event"] not in ("run_started", "run_finished")
    ]
    manifest = store.read_manifest()
    final = {
        "members": [(m["slot"], m["uid"], m["fitness"], m["checkpoint"]) for m in manifest["members"]],
        "best": manifest["best"],
        **{k: summary[k] for k in ("best_fitness", "best_uid", "final_metric", "best_genome")},
    }
    return final, journal, arrivals.order, store


@pytest.mark.parametrize("algorithm", ["pbtnas", "random-sp"])
def test_pipelined_order_gives_the_plain_orders_results_and_journal(tmp_path, algorithm):
    final, journal, order, _ = run(tmp_path, "ordered", algorithm=algorithm)
    plain_final, plain_journal, plain_order, _ = run(tmp_path, "plain", algorithm=algorithm, lookahead=False)
    assert final == plain_final
    assert json.dumps(journal, sort_keys=True) == json.dumps(plain_journal, sort_keys=True)
    assert order != plain_order, "the dispatch order should differ from slot order"


def test_longest_expected_step_is_dispatched_first(tmp_path):
    # In process, results come back in the order jobs were handed out.
    _, _, order, store = run(tmp_path, "r", algorithm="random")
    seconds = {(e["step"], e["uid"]): e["seconds"] for e in store.iter_events("member_trained")}
    for step in (1, 2, 3):
        uids = [uid for s, uid in order if s == step]
        previous = [seconds[step - 1, uid] for uid in uids]
        assert previous == sorted(previous, reverse=True), (step, uids, previous)
    assert [uid for s, uid in order if s == 0] == list(range(8))  # nothing measured yet: slot order


@pytest.mark.parametrize("algorithm", ["pbtnas", "random", "random-sp"])
def test_next_step_is_handed_out_before_the_commit(tmp_path, algorithm):
    # After step s is decided, every job of step s + 1 (survivors and children) is handed out
    # before the manifest commits step s (a driver killed in between redoes it with the same seeds).
    from pbtnas.backends.inprocess import InProcessBackend

    handed: list[tuple[int, int]] = []

    class Recording(InProcessBackend):
        def submit(self, job):
            handed.append((job.step, RunStore(tmp_path / "r").read_manifest()["step_done"]))
            super().submit(job)

    options = {"backend": "inprocess", "algorithm": algorithm, "loggers": ["none"]}
    config = config_from_dict({"task": SIM, "population": 8, "steps": 3, "seed": 3, **options})
    make_runner(config, tmp_path / "r", backend=Recording(), progress=False).start().run()
    later = [(step, done) for step, done in handed if step > 0]
    assert len(later) == 16 and all(done == step - 2 for step, done in later)


@pytest.mark.slow
def test_random_sp_refreshes_ahead_on_idle_workers(tmp_path):
    final, journal, _, store = run(tmp_path, "ahead", algorithm="random-sp", backend="local", workers=2)
    plain_final, plain_journal, _, _ = run(tmp_path, "plain", algorithm="random-sp", backend="local", workers=2, lookahead=False)
    assert final == plain_final and journal == plain_journal
    assert any(e.get("started_early") for e in store.iter_events("member_trained"))
