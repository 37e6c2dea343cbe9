"""The body of one local worker process, entered through :func:`pbtnas.backends.guard.main` once
the guard watches the driver: set up the process (signals, threads, start method), then run the
jobs the driver sends over its pipe until told to stop.

It lives apart from :mod:`pbtnas.backends.local` (the driver side, which names the guard's file
to the spawned interpreter), so that the guard imports this module and never the driver's.
"""

from __future__ import annotations

import multiprocessing
import os

from pbtnas.backends.worker import execute_job


def init_worker(threads: int, start_method: str | None = None) -> None:
    """Set up this process for jobs: Ctrl-C left to the driver, children allowed, the driver's
    start method, ``threads`` torch threads."""
    import signal

    import torch

    # Ctrl-C reaches the whole process group: the driver handles it (and stops the workers), so a
    # worker does not print a traceback of its own
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A task's own training loop may start processes (a DataLoader with num_workers > 0), which
    # multiprocessing refuses in a daemonic process. The driver still starts this worker as a
    # daemon (terminated if the driver exits without closing the backend); only this process's
    # view changes. Its children are torch's DataLoader workers or the task's own, which exit
    # with it (torch's watch their parent; see also pbtnas.backends.guard).
    multiprocessing.current_process().daemon = False
    # ... and with the driver's start method, not the "spawn" this worker was started with: on
    # Linux a DataLoader's workers are then forked, as in the user's own script, and find the
    # classes of a task file that only this process has loaded.
    if start_method is not None:
        multiprocessing.set_start_method(start_method, force=True)

    torch.set_num_threads(threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))


def worker_main(conn, threads: int, start_method: str | None = None) -> None:
    """Body of one worker process (entered through :func:`pbtnas.backends.guard.main`, which
    already watches the driver): receive a job, send its result, until told to stop."""
    init_worker(threads, start_method)
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):  # the driver is gone
            os._exit(0)
        if job is None:
            return
        result = execute_job(job)
        try:
            conn.send(result)
        except (BrokenPipeError, OSError):
            os._exit(0)
