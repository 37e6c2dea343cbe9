"""Driver for tests/test_tensorboard_media.py: a tiny search with TensorBoard that SIGKILLs itself
(like ``kill -9``) in the middle of step ``K``, right after the second member's result was
reported to the loggers (before the step is committed). Usage: tb_kill_driver.py RUN_DIR K."""

import os
import signal
import sys

from conftest import TINY_TASK

from pbtnas.config import config_from_dict
from pbtnas.engine.runner import make_runner


class KillMidStep:
    """After the loggers saw two results of step ``step``: SIGKILL, no cleanup of any kind."""

    def __init__(self, step: int):
        self.step, self.seen = step, 0

    def on_member_result(self, step, member, result):
        if step == self.step:
            self.seen += 1
            if self.seen == 2:
                os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    run_dir, step = sys.argv[1], int(sys.argv[2])
    config = config_from_dict({"task": dict(TINY_TASK), "population": 4, "steps": 3, "seed": 4, "backend": "inprocess", "loggers": ["tensorboard"]})
    runner = make_runner(config, run_dir, progress=False)
    runner.observers.append(KillMidStep(step))  # after the loggers: they have seen the results
    runner.start().run()
