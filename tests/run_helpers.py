"""Helpers shared by the tests that run whole searches."""

from pbtnas.rundir.store import RunStore


class StopAfter:
    """Observer that simulates a crash right after a step was committed."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, step, runner):
        if step == self.step:
            raise KeyboardInterrupt


def fitness_trace(run_dir):
    """(step, slot, uid, fitness) of every valid member_trained event, in journal order."""
    return [(e["step"], e["slot"], e["uid"], e["fitness"]) for e in RunStore(run_dir).iter_events("member_trained")]


# a tiny, fast simulated search for CLI tests: in-process, no loggers, quiet
QUICK = [
    "--population",
    "4",
    "--steps",
    "3",
    "--backend",
    "inprocess",
    "--seed",
    "5",
    "--quiet",
    "--set",
    "task.step_seconds=0",
    "--set",
    "loggers=none",
]
