"""The ``--trust-code`` option of the verbs that import a run's task (export, soup, resume)."""

from __future__ import annotations

import argparse


def add_trust_code(parser: argparse.ArgumentParser) -> None:
    """Add ``--trust-code``: import the task file the run names even when it is not the file
    recorded at start or lies inside the run folder (see :mod:`pbtnas.tasks.trust`)."""
    parser.add_argument(
        "--trust-code",
        action="store_true",
        help="import the run's task file even if it changed since the run started or lies inside the run "
        "folder (a run directory is data: without this, such a file is refused, never run)",
    )
