"""Checks of what a command is given before it does anything: a folder it must write into, a run
directory's ``config.yaml`` and manifest. Each failure is one :class:`PbtnasError` naming the file
(``error: ...``, exit 2), raised before anything is created or changed."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from pbtnas.errors import ConfigError, PbtnasError


def writable_folder(path: str | Path, option: str = "--out") -> None:
    """Refuse a folder that cannot be written, before any work: a path that is (or lies under) a
    regular file, or whose nearest existing folder refuses a probe file (read-only file system,
    no permission). Creates nothing that stays: the probe is removed at once."""
    target = Path(path).absolute()
    if target.exists() and not target.is_dir():
        raise PbtnasError(f"{option} {path} is a file, not a folder; choose a folder")
    existing = target
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise PbtnasError(f"{option} {path} cannot be created: {existing} is a file, not a folder; choose another folder")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".pbtnas-probe-")
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise PbtnasError(f"{option} {path} cannot be written: {existing} refuses new files ({reason}); choose a folder you may write") from None
    os.close(fd)
    os.unlink(probe)


def run_config(store, required: bool = True) -> dict:
    """A run directory's ``config.yaml``, read safely (no YAML tags that build objects) and
    checked like a config given to ``pbtnas run`` (known keys, kinds of values); one error naming
    the file otherwise. With ``required=False`` a missing file gives ``{}``."""
    from pbtnas.config import config_from_dict

    if not required and not store.config_path.exists():
        return {}
    data = store.read_config()  # a mapping, parsed with yaml.safe_load
    try:
        config = config_from_dict(dict(data), where="config")
        _check_task_options(config.task, store.root)
    except ConfigError as exc:
        raise ConfigError(f"{store.config_path} is not a valid run config: {exc}; fix or restore the file") from None
    return data


def _check_task_options(task: dict, run_dir: Path) -> None:
    """The task's options, without running task code (a run directory is data): their names
    against those ``run_info.json`` recorded at start; for an older run of a built-in task, as the
    task would parse them (pbtnas's own code, no data loaded). Another task's options are left to
    the command that builds it, after its trust check."""
    from pbtnas.options import did_you_mean
    from pbtnas.rundir.runinfo import read_run_info

    options = dict(task)
    name = options.pop("name", None)
    info = read_run_info(run_dir)
    if info is not None and isinstance(info.get("option_defaults"), dict) and info["option_defaults"]:
        known = sorted(info["option_defaults"])
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise ConfigError(f"unknown task option(s) {unknown}{did_you_mean(unknown, known)}; known: {known}")
        return
    from pbtnas.tasks import BUILTIN, task_class
    from pbtnas.tasks.base import parse_options

    if name not in BUILTIN:
        return
    try:
        cls = task_class(name)
    except (PbtnasError, ImportError):
        return
    parse_options(cls.Options, options, where="task")


def run_manifest(store, required: bool = True) -> dict | None:
    """A run directory's ``population.json`` checked for shape (see :mod:`pbtnas.rundir.checks`);
    None when it is absent and not ``required``."""
    if not required and not store.manifest_path.exists():
        return None
    return store.read_manifest()
