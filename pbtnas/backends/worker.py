"""The body of one member step, identical on every backend."""

from __future__ import annotations

import math
import os
import resource
import socket
import time
import traceback
from pathlib import Path

import torch

from pbtnas import faults
from pbtnas.backends.base import TrainJob, TrainResult
from pbtnas.errors import MemberDiverged
from pbtnas.rundir.atomic import atomic_write_bytes
from pbtnas.rundir.store import load_member, save_member
from pbtnas.tasks import build_task
from pbtnas.tasks.costs import measure_costs


def execute_job(job: TrainJob) -> TrainResult:
    """Load (or initialise) a member, train one step, evaluate, save. Never raises for a member's
    own failure: a diverged or crashed member comes back with fitness -inf and its input state
    copied to ``state_out``, so no other member's work is affected."""
    start = time.perf_counter()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(job.threads)
    worker = f"{socket.gethostname()}:{os.getpid()}"
    try:
        faults.in_job(job, "start")
        task = build_task(job.task_config, job.task_roots)
        if job.state_in is None:
            genome = task.space.validate(job.genome)
            state = task.init_state(genome, job.init_seed)
        else:
            genome, state, _ = load_member(job.state_in)
            genome = task.space.validate(genome)
        try:
            state, metrics = task.train_step(genome, state, job.step, job.train_seed)
            values = None
            if job.values:  # several objectives: one evaluation gives the fitness and the metrics
                values = task.score_values(genome, state, job.eval_seed)
                fitness = values["fitness"]
            else:
                fitness = task.score(genome, state, job.eval_seed)
            if math.isnan(fitness):
                raise MemberDiverged("fitness is NaN")
            if values is not None:
                values = {**values, **measure_costs(task, genome, state, job.values)}
        except MemberDiverged as exc:
            _keep_input(job, task, genome)
            return TrainResult(
                job.slot,
                job.uid,
                job.step,
                float("-inf"),
                {},
                time.perf_counter() - start,
                job.state_out,
                error=f"diverged: {exc}",
                diverged=True,
                worker=worker,
                attempt=job.attempt,
                peak_rss_mb=_peak_rss_mb(),
            )
        faults.in_job(job, "trained")
        save_member(job.state_out, genome, state, job.uid, {"step": job.step, "fitness": fitness})
        faults.in_job(job, "saved")
        return TrainResult(
            job.slot,
            job.uid,
            job.step,
            fitness,
            metrics,
            time.perf_counter() - start,
            job.state_out,
            worker=worker,
            attempt=job.attempt,
            peak_rss_mb=_peak_rss_mb(),
            values=values,
        )
    except Exception as exc:  # a member's crash must not take the run down
        text = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"
        try:
            _keep_input(job, None, None)
        except Exception:  # the input itself is unreadable; the runner sees error and state_out missing
            pass
        return TrainResult(
            job.slot,
            job.uid,
            job.step,
            float("-inf"),
            {},
            time.perf_counter() - start,
            job.state_out,
            error=text,
            worker=worker,
            attempt=job.attempt,
            peak_rss_mb=_peak_rss_mb(),
        )
    finally:
        torch.set_num_threads(previous_threads)


def _keep_input(job: TrainJob, task, genome) -> None:
    """A failed member keeps its last good state so it can still be a checkpoint (and replaced)."""
    if job.state_in is not None:
        atomic_write_bytes(job.state_out, Path(job.state_in).read_bytes())
    else:
        task = task or build_task(job.task_config, job.task_roots)
        genome = genome or task.space.validate(job.genome)
        save_member(job.state_out, genome, task.init_state(genome, job.init_seed), job.uid, {"step": job.step})


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
