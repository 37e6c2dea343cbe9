"""The first instructions of a local worker process: exit with the driver, before anything heavy.

A local worker is a freshly spawned interpreter that then imports torch and the task, which takes
seconds (tens of seconds on a loaded machine). A driver killed in that time (``kill -9``) must not
leave the worker running on as an orphan, so the watch on the driver starts before those imports:

* :func:`main` is the worker's entry point. The driver has the spawned interpreter load this file
  *by its path* (:data:`BOOT`), not as ``pbtnas.backends.guard``: importing the ``pbtnas`` package
  would import torch first. This module therefore imports nothing but the standard library.
* On Linux the kernel kills the worker when the driver dies (``prctl(PR_SET_PDEATHSIG)``), even
  while the worker is inside a long C call such as loading torch's libraries, where no Python
  thread can run. Then the worker checks that the driver is still its parent: had it died before
  ``prctl``, no signal would come.
* Everywhere, a daemon thread waits on the pipe that multiprocessing keeps open from the driver to
  each spawned child (its end closes when the driver dies) and polls the parent's process id; either
  way the worker exits at once.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

#: what a spawned local worker runs first (``Process(target=exec, args=(BOOT, namespace))``), with
#: ``GUARD`` (this file's path) and ``ARGS`` (the arguments of :func:`main`) in ``namespace``
BOOT = (
    "import importlib.util as _u\n"
    "_spec = _u.spec_from_file_location('pbtnas_worker_guard', GUARD)\n"
    "_guard = _u.module_from_spec(_spec)\n"
    "_spec.loader.exec_module(_guard)\n"
    "_guard.main(*ARGS)\n"
)
#: seconds between two looks at the parent's process id (the fallback when the pipe says nothing)
POLL_S = 0.2
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def main(conn, threads: int, parent: int, start_method: str | None, pdeathsig: bool) -> None:
    """Entry point of a local worker: watch the driver (pid ``parent``), then import the worker's
    body (torch, the task) and serve jobs on ``conn`` until told to stop."""
    exit_with_parent(parent, pdeathsig)
    from pbtnas.backends.local_worker import worker_main  # seconds: torch

    worker_main(conn, threads, start_method)


def exit_with_parent(parent: int, pdeathsig: bool = True) -> None:
    """End this process as soon as process ``parent`` (the driver) is gone (see module docstring).
    ``pdeathsig`` only when the driver spawned this process from its main thread: Linux sends the
    signal when the *thread* that forked the child ends, which for another thread may be long
    before the driver does."""
    if pdeathsig and sys.platform.startswith("linux"):
        _set_pdeathsig()
    if os.getppid() != parent:  # the driver died before the signal was asked for
        os._exit(1)
    threading.Thread(target=_watch, args=(parent,), name="pbtnas-parent-watch", daemon=True).start()


def _set_pdeathsig() -> None:
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # no prctl (an unusual libc): the watch thread still works
        pass


def _watch(parent: int) -> None:
    import multiprocessing
    from multiprocessing.connection import wait

    process = multiprocessing.parent_process()
    sentinel = getattr(process, "sentinel", None)
    if sentinel is not None:
        try:
            wait([sentinel])  # returns when the driver's end of the pipe closes
        except OSError:
            pass
    # The pipe closed (or there is none): the driver died, or let go of this worker. A dead
    # driver may not have been replaced as parent yet (its files close first), so poll briefly.
    while True:
        if os.getppid() != parent:
            os._exit(1)
        threading.Event().wait(POLL_S)
