"""Deterministic fault injection, for tests that must hit a moment (a kill right after a chosen
step was committed) without polling for a timing window.

Set ``PBTNAS_FAULT`` to ``after-step:K:kill`` (the driver sends itself SIGKILL, like ``kill -9``)
or ``after-step:K:interrupt`` (like Ctrl-C) and the driver does so right after step ``K`` was
committed. Unset, this module does nothing.
"""

from __future__ import annotations

import os
import signal

ENV = "PBTNAS_FAULT"


def at(point: str, step: int) -> None:
    """Called by the engine at named points; fires the fault ``PBTNAS_FAULT`` names, if any."""
    spec = os.environ.get(ENV, "")
    if not spec:
        return
    try:
        where, k, action = spec.split(":")
        wanted = int(k)
    except ValueError:
        return
    if where != point or wanted != step:
        return
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "interrupt":
        raise KeyboardInterrupt
