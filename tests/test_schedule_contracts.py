"""Contracts every schedule keeps: one test body each, parametrised over every schedule in the
registry (:data:`pbtnas.search.schedules.SCHEDULES`), so that a schedule added there is held to
them without a line here, and over the backends where the contract concerns them.

1. **Resume exactness**: a run whose driver stops right after committed step ``K`` (an observer's
   interrupt, the ``after-step:K`` fault point, or a real SIGKILL of ``python -m pbtnas run``) and
   is resumed ends as the unbroken run did: the same fitness trace, delivered member (its uid,
   genome, fitness and weights) and final metric.
2. **Retries**: a worker killed at a chosen (uid, step, phase) is retried; nothing is journaled
   ``member_failed`` and the run is the unbroken one.
3. **Failures**: a member whose worker dies on every attempt is journaled ``member_failed`` once
   its retries are spent and the run finishes; a member step that raises stands at -inf and the run
   finishes; when every member fails the run stops with one error line that says how to resume.
4. **Budget**: every run trains exactly ``population x steps`` member steps, each once (the
   journal's count, and the summary's ``member_steps`` where a schedule reports it).

The unbroken reference is always the in-process run. Where a schedule legitimately differs it is
said in the tables below (with the reason), never by a silent skip. A schedule that fails a
contract it should keep is marked ``xfail(strict=True)`` with the finding as the reason, so that
the fix shows as an XPASS and the mark goes.

Fast part (default): the in-process runs, and one local-backend run per contract and schedule.
The rest (every K on the local backend, the subprocess SIGKILLs, every worker phase, Ray) is slow.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest
import torch
import yaml
from run_helpers import StopAfter, fitness_trace

from pbtnas.backends import InProcessBackend
from pbtnas.backends.base import TrainResult
from pbtnas.backends.worker import execute_job
from pbtnas.config import config_from_dict
from pbtnas.engine.runner import RunError, make_runner, resume_runner
from pbtnas.rundir.store import RunStore, load_member
from pbtnas.search.algorithms import ALGORITHMS
from pbtnas.search.schedules import SCHEDULES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TASK = {"name": "simulated", "layers": 3, "width": 4, "step_seconds": 0.0, "batches_per_step": 2}
POPULATION, STEPS, SEED = 4, 4, 4

# -- what each schedule needs, and where it legitimately differs ------------------------------
#: options a schedule needs beyond what selects it, at the contracts' budget of 4 x 4 member steps
NEEDS = {
    "bohb": {"bohb_eta": 2},  # eta 3 (the default) needs more steps than 4 for one Hyperband bracket
    "nsga2": {"nsga2_trial_steps": 2},  # trials of two steps: a stop can fall inside a trial
}
#: packages a schedule needs (its tests skip, saying so, where one is missing)
REQUIRES = {"bohb": "optuna", "nsga2": "optuna"}
#: Schedules whose decisions depend on the order in which results arrive: async replaces a member as
#: its result comes back, bohb's TPE samples from the trials finished so far and runs one trial per
#: worker. With several workers the order is the machine's, so on a parallel backend they are
#: compared with the in-process run at workers=1 (as tests/test_bohb.py does); the others run on two
#: workers, where the order changes nothing (results are taken by slot).
ORDER_DEPENDENT = {"async", "bohb", "nsga2"}  # nsga2: as bohb, its sampler sees the trials finished so far
#: Schedules for which a retried job is not the job the unbroken run had at that moment: async
#: resubmits the retry behind every slot already queued, so the slots after it see another arrival
#: order (and so other replacements). Their contract is that the retried step itself equals the
#: unbroken run's (tests/test_async_runner.py checks the same) and that the budget holds.
RETRY_REORDERS = {"async"}
#: Schedules that void nothing on resume: bohb redoes a step whose result was journaled but not yet
#: committed (a kill inside its commit, e.g. dispatched:K) and journals it again; readers keep the
#: last (pbtnas/engine/bohb.py's docstring). Their trace is compared as readers read it.
REDONE_EVENTS_KEPT = {"bohb", "nsga2"}
# nsga2 runs bohb's trial machinery with another sampler: bohb's default local-worker cases cover
# that machinery's local path, so nsga2's are in the slow set (the default suite's budget)
LOCAL_SLOW = {"nsga2"}  # nsga2 is bohb's machinery with another sampler
#: Contracts a schedule fails today (findings, reported in the reason): strict xfails. The first
#: finding (the async schedule never reached the after-step fault point) is fixed.
FINDINGS: dict[tuple[str, str | None], str] = {}


def _selector(name: str) -> dict:
    entry = SCHEDULES[name]
    if entry.mode is not None:
        return {"mode": entry.mode}
    return {"algorithm": next(algo for algo, a in ALGORITHMS.items() if a.schedule == name)}


def _marks(name: str, point: str | None = None) -> list:
    marks = []
    if name in REQUIRES and importlib.util.find_spec(REQUIRES[name]) is None:
        marks.append(pytest.mark.skip(reason=f"schedule {name} needs {REQUIRES[name]}"))
    if (name, point) in FINDINGS:
        marks.append(pytest.mark.xfail(strict=True, reason=FINDINGS[(name, point)]))
    return marks


def schedules(point: str | None = None) -> list:
    """One parameter per registered schedule (``point``: the fault point the test uses, for FINDINGS)."""
    return [pytest.param(name, id=name, marks=_marks(name, point)) for name in SCHEDULES]


def workers_for(name: str) -> int:
    return 1 if name in ORDER_DEPENDENT else 2


def make_config(name: str, **overrides):
    data = {
        "task": dict(TASK),
        "population": POPULATION,
        "steps": STEPS,
        "seed": SEED,
        "backend": "inprocess",
        "loggers": ["none"],
        **_selector(name),
        **NEEDS.get(name, {}),
    }
    data.update(overrides)
    return config_from_dict(data)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The unbroken in-process run of a schedule, made once per module: (run_dir, summary)."""
    made: dict = {}

    def get(name: str):
        if name not in made:
            run_dir = tmp_path_factory.mktemp(f"ref-{name}") / "run"
            made[name] = run_dir, make_runner(make_config(name), run_dir, progress=False).start().run()
        return made[name]

    return get


# -- what the contracts compare ---------------------------------------------------------------
def trace(run_dir, schedule):
    """The fitness trace as readers read it: for REDONE_EVENTS_KEPT the last event of each member step."""
    events = fitness_trace(run_dir)
    if schedule not in REDONE_EVENTS_KEPT:
        return events
    last = {}
    for event in events:
        last[event[:3]] = event  # the place of the first, the value of the last
    return list(last.values())


def assert_same_run(run_dir, summary, ref_dir, ref, schedule):
    """The run in ``run_dir`` ended as the reference did: trace, delivered member, final metric."""
    assert trace(run_dir, schedule) == fitness_trace(ref_dir)
    for key in ("best_uid", "best_genome", "best_fitness", "final_selection", "final_metric", "steps_done", "member_steps"):
        assert summary.get(key) == ref.get(key), key
    _, mine, _ = load_member(run_dir / "final/member.pt")
    _, theirs, _ = load_member(ref_dir / "final/member.pt")
    for model, tensors in theirs.models.items():
        for key, tensor in tensors.items():
            assert torch.equal(mine.models[model][key], tensor), f"{model}.{key}"


def assert_budget(run_dir, summary, schedule, population=POPULATION, steps=STEPS):
    """Exactly population x steps member steps were trained, each (step, uid) once."""
    trained = trace(run_dir, schedule)
    keys = [(step, uid) for step, _, uid, _ in trained]
    assert len(keys) == len(set(keys)), "a member step was trained twice"
    assert len(trained) == population * steps
    assert summary.get("member_steps", len(trained)) == population * steps
    assert summary["steps_done"] == steps and summary["finished"]


def events(run_dir, kind):
    return list(RunStore(run_dir).iter_events(kind))


def a_member_step(ref_dir, step=1):
    """(uid, step) of the first member the reference trained at ``step`` (the same job is made in
    every run that is the reference up to that point)."""
    return next((uid, s) for s, _, uid, _ in fitness_trace(ref_dir) if s == step)


def stop_and_resume(config, run_dir, observers=()):
    """Start ``config`` in ``run_dir`` until it is interrupted (an observer or an armed fault),
    check it delivered nothing, then resume it as ``pbtnas resume`` does; the resumed summary."""
    runner = make_runner(config, run_dir, progress=False)
    runner.observers.extend(observers)
    with pytest.raises(KeyboardInterrupt):
        runner.start().run()
    assert RunStore(run_dir).read_summary() is None
    return resume_runner(run_dir, progress=False).run()


# -- 1. resume exactness ----------------------------------------------------------------------
def _stops() -> list:
    """(schedule, backend, workers, K). In-process every K (K = STEPS - 1: a stop after the last
    commit, before the run delivered); on the local backend K=1 at one worker by default, every
    other K slow; two local workers (slow) only for the schedules that do not depend on arrival
    order (ORDER_DEPENDENT: theirs would differ by design, not by a fault); Ray (slow, the local_ray
    fixture) at K=1 with the workers the order allows."""
    out = []
    for name in SCHEDULES:
        marks = _marks(name)
        for k in range(STEPS):
            out.append(pytest.param(name, "inprocess", 1, k, id=f"{name}-inprocess-K{k}", marks=marks))
            local_slow = [] if k == 1 and name not in LOCAL_SLOW else [pytest.mark.slow]
            out.append(pytest.param(name, "local", 1, k, id=f"{name}-local1-K{k}", marks=marks + local_slow))
            if name not in ORDER_DEPENDENT:
                out.append(pytest.param(name, "local", 2, k, id=f"{name}-local2-K{k}", marks=[*marks, pytest.mark.slow]))
        out.append(pytest.param(name, "ray", workers_for(name), 1, id=f"{name}-ray-K1", marks=[*marks, pytest.mark.slow]))
    return out


@pytest.mark.parametrize("schedule, backend, workers, k", _stops())
def test_resume_after_a_stop_at_each_committed_step_is_the_unbroken_run(schedule, backend, workers, k, reference, tmp_path, request):
    ref_dir, ref = reference(schedule)
    overrides = {} if backend == "inprocess" else {"backend": backend, "workers": workers}
    if backend == "ray":
        request.getfixturevalue("local_ray")
        overrides["cpus_per_member"] = 1.0
    summary = stop_and_resume(make_config(schedule, **overrides), tmp_path / "r", [StopAfter(k)])
    assert_same_run(tmp_path / "r", summary, ref_dir, ref, schedule)
    assert_budget(tmp_path / "r", summary, schedule)


@pytest.mark.parametrize("k", [1, *(pytest.param(k, marks=pytest.mark.slow) for k in range(STEPS) if k != 1)])
@pytest.mark.parametrize("schedule", schedules("after-step"))
def test_the_after_step_fault_point_stops_every_schedule_and_resume_is_exact(schedule, k, reference, tmp_path, monkeypatch):
    """The same moment through the fault injection the SIGKILL tests use (as Ctrl-C, in-process)."""
    ref_dir, ref = reference(schedule)
    monkeypatch.setenv("PBTNAS_FAULT", f"after-step:{k}:interrupt")
    config = make_config(schedule)
    runner = make_runner(config, tmp_path / "r", progress=False)
    with pytest.raises(KeyboardInterrupt):
        runner.start().run()
    monkeypatch.delenv("PBTNAS_FAULT")
    assert RunStore(tmp_path / "r").read_summary() is None
    summary = resume_runner(tmp_path / "r", progress=False).run()
    assert_same_run(tmp_path / "r", summary, ref_dir, ref, schedule)
    assert_budget(tmp_path / "r", summary, schedule)


def _cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "pbtnas", *args], capture_output=True, text=True, cwd=ROOT, env={**os.environ, **(env or {})}, timeout=300
    )


def _kills() -> list:
    """(schedule, fault, backend, K): SIGKILL after a commit (in-process), while a local worker
    trains the first job of step K, and while a local worker starts up (workers start with the
    run's first jobs, so only K=0)."""
    out = []
    for name in SCHEDULES:
        for fault, backend, ks in (("after-step", "inprocess", (1, STEPS - 1)), ("dispatched", "local", (1, STEPS - 1)), ("spawned", "local", (0,))):
            for k in ks:
                out.append(pytest.param(name, fault, backend, k, id=f"{name}-{fault}-K{k}", marks=_marks(name, fault)))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("schedule, fault, backend, k", _kills())
def test_a_sigkilled_driver_resumes_to_the_unbroken_run(schedule, fault, backend, k, reference, tmp_path):
    """``python -m pbtnas run`` SIGKILLed by a fault point, then ``pbtnas resume``."""
    ref_dir, ref = reference(schedule)
    config = make_config(schedule, backend=backend, workers=workers_for(schedule)).to_dict()
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    out = tmp_path / "r"
    killed = _cli("run", str(tmp_path / "c.yaml"), "--out", str(out), "--quiet", env={"PBTNAS_FAULT": f"{fault}:{k}:kill"})
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert not (out / "summary.json").exists()
    resumed = _cli("resume", str(out), "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert_same_run(out, summary, ref_dir, ref, schedule)
    assert_budget(out, summary, schedule)


# -- 2. retries -------------------------------------------------------------------------------
def _retries() -> list:
    """(schedule, workers, phase): a kill after training at one local worker by default; at the
    start and after the checkpoint (slow); at two workers (slow) for the order-independent schedules."""
    out = []
    for name in SCHEDULES:
        for phase in ("trained", "start", "saved"):
            slow = [] if phase == "trained" and name not in LOCAL_SLOW else [pytest.mark.slow]
            out.append(pytest.param(name, 1, phase, id=f"{name}-local1-{phase}", marks=_marks(name) + slow))
        if name not in ORDER_DEPENDENT:
            out.append(pytest.param(name, 2, "trained", id=f"{name}-local2-trained", marks=[*_marks(name), pytest.mark.slow]))
    return out


@pytest.mark.parametrize("schedule, workers, phase", _retries())
def test_a_killed_worker_is_retried_and_nothing_fails(schedule, workers, phase, reference, tmp_path, monkeypatch):
    ref_dir, ref = reference(schedule)
    uid, step = a_member_step(ref_dir)
    monkeypatch.setenv("PBTNAS_FAULT", f"worker:{uid}:{step}:{phase}:kill")
    summary = make_runner(make_config(schedule, backend="local", workers=workers), tmp_path / "r", progress=False).start().run()
    retries = events(tmp_path / "r", "member_retry")
    assert [(e["uid"], e["step"], e["attempt"]) for e in retries] == [(uid, step, 2)]
    assert "killed by signal 9" in retries[0]["reason"]
    assert events(tmp_path / "r", "member_failed") == []
    # the retried step ran from the same checkpoint with the same seeds: the same fitness
    mine = {(s, u): f for s, _, u, f in fitness_trace(tmp_path / "r")}
    theirs = {(s, u): f for s, _, u, f in fitness_trace(ref_dir)}
    assert mine[(step, uid)] == theirs[(step, uid)]
    if schedule not in RETRY_REORDERS:
        assert_same_run(tmp_path / "r", summary, ref_dir, ref, schedule)
    assert_budget(tmp_path / "r", summary, schedule)


# -- 3. failures ------------------------------------------------------------------------------
class LosesWorkers(InProcessBackend):
    """In-process, but the worker of the chosen (uid, step) jobs dies on every attempt (``None``: of every job)."""

    def __init__(self, lose=None):
        super().__init__()
        self.lose = lose

    def next_result(self):
        job = self._queue.popleft()
        if self.lose is None or (job.uid, job.step) in self.lose:
            died = "worker process died (test)"
            return TrainResult(job.slot, job.uid, job.step, float("-inf"), {}, 0.0, job.state_out, error=died, attempt=job.attempt, lost_worker=True)
        return execute_job(job)


@pytest.mark.parametrize("schedule", schedules())
def test_a_member_whose_worker_dies_every_attempt_fails_alone_and_the_run_finishes(schedule, reference, tmp_path):
    ref_dir, _ = reference(schedule)
    uid, step = a_member_step(ref_dir)
    run_dir = tmp_path / "r"
    backend = LosesWorkers({(uid, step)})
    summary = make_runner(make_config(schedule, max_retries=1), run_dir, backend=backend, progress=False).start().run()
    assert [(e["uid"], e["step"], e["attempt"]) for e in events(run_dir, "member_retry")] == [(uid, step, 2)]
    assert [(e["uid"], e["step"], e["attempts"]) for e in events(run_dir, "member_failed")] == [(uid, step, 2)]
    failed = [e for e in events(run_dir, "member_trained") if (e["uid"], e["step"]) == (uid, step)]
    assert len(failed) == 1 and failed[0]["fitness"] == float("-inf") and "died" in failed[0]["error"]
    assert_budget(run_dir, summary, schedule)  # the failed step counts once, like any other


@pytest.mark.parametrize("schedule", schedules())
def test_a_member_step_that_raises_stands_at_minus_inf_and_is_not_retried(schedule, reference, tmp_path, monkeypatch):
    ref_dir, _ = reference(schedule)
    uid, step = a_member_step(ref_dir)
    monkeypatch.setenv("PBTNAS_FAULT", f"worker:{uid}:{step}:trained:raise")  # a crash the worker survives
    run_dir = tmp_path / "r"
    summary = make_runner(make_config(schedule), run_dir, progress=False).start().run()
    bad = [e for e in events(run_dir, "member_trained") if e.get("error")]
    assert [(e["uid"], e["step"]) for e in bad] == [(uid, step)] and "injected fault" in bad[0]["error"]
    assert bad[0]["fitness"] == float("-inf")
    assert events(run_dir, "member_retry") == []
    assert_budget(run_dir, summary, schedule)


@pytest.mark.parametrize("how", ["raise", "lost"])
@pytest.mark.parametrize("schedule", schedules())
def test_when_every_member_fails_the_run_stops_with_one_line(schedule, how, tmp_path, monkeypatch):
    """Sync stops when every member of a step failed, the schedules without a barrier after
    ``population`` failures in a row; either way one line that says how to go on."""
    run_dir = tmp_path / "r"
    backend = None
    if how == "raise":
        monkeypatch.setenv("PBTNAS_FAULT", ",".join(f"worker:{uid}:0:start:raise" for uid in range(POPULATION)))
    else:
        backend = LosesWorkers()
    runner = make_runner(make_config(schedule, max_retries=1), run_dir, backend=backend, progress=False).start()
    with pytest.raises(RunError) as stopped:
        runner.run()
    line = str(stopped.value)
    assert "\n" not in line and f"pbtnas resume {run_dir}" in line
    assert ("injected fault" if how == "raise" else "worker process died") in line
    assert events(run_dir, "member_failed")  # the tracebacks are in the journal
    assert RunStore(run_dir).read_summary() is None


# -- 4. budget --------------------------------------------------------------------------------
@pytest.mark.parametrize("population, steps", [(POPULATION, STEPS), (5, 3), pytest.param(6, 2, marks=pytest.mark.slow)])
@pytest.mark.parametrize("schedule", schedules())
def test_the_budget_is_population_times_steps(schedule, population, steps, reference, tmp_path):
    if (population, steps) == (POPULATION, STEPS):
        run_dir, summary = reference(schedule)
    else:
        run_dir = tmp_path / "r"
        summary = make_runner(make_config(schedule, population=population, steps=steps), run_dir, progress=False).start().run()
    assert_budget(run_dir, summary, schedule, population, steps)
    assert json.loads((run_dir / "population.json").read_text())["finished"]
