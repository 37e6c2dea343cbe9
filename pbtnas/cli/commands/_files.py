"""File modes of what a user shares: the run's config and summary, reports and exports are
readable by others (0644 under the usual umask 022), like any file a command-line tool writes.
Atomic writes go through ``tempfile.mkstemp``, which creates 0600 files; these are opened up
after the fact (checkpoints and the journal keep their mode)."""

from __future__ import annotations

import os
from pathlib import Path

SHARED_IN_RUN = ("config.yaml", "run_info.json", "summary.json", "population.json", "best/best.json")


def umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def share(*paths: str | Path) -> None:
    """Give existing regular files the mode a plain ``open(..., 'w')`` would (0666 & ~umask)."""
    mode = 0o666 & ~umask()
    for path in paths:
        p = Path(path)
        if p.is_file() and not p.is_symlink():
            try:
                os.chmod(p, mode)
            except OSError:  # not ours (a shared folder): leave it
                pass


def share_run(run_dir: str | Path) -> None:
    root = Path(run_dir)
    share(*(root / name for name in SHARED_IN_RUN))


def share_tree(folder: str | Path) -> None:
    root = Path(folder)
    if root.is_dir():
        share(*(p for p in root.rglob("*") if p.is_file()))
