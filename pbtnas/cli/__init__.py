"""The ``pbtnas`` command line. Every module in :mod:`pbtnas.cli.commands` defines
``register(subparsers)`` and adds its subcommands; this file only dispatches and turns user
errors into one line."""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from pbtnas.errors import PbtnasError


def build_parser() -> argparse.ArgumentParser:
    from pbtnas.cli import commands
    from pbtnas.version import __version__

    parser = argparse.ArgumentParser(
        prog="pbtnas",
        description="Population-based NAS by architecture mixing with shrink-perturb weight inheritance (PBT-NAS).",
    )
    parser.add_argument("--version", action="version", version=f"pbtnas {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


#: commands that start from the user's own input (a config, a task name), so the folder they are
#: started in is importable (docs/custom-task.md)
STARTS_FROM_HERE = ("run", "check", "compare", "space")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in STARTS_FROM_HERE:
        from pbtnas.tasks import add_import_roots

        # As under `python -m pbtnas`: a task module or a gymnasium environment module beside where
        # a run starts is importable (this command's own sys.path holds its bin folder instead).
        # Not for verbs that open a run directory: resume uses the start folder the run recorded.
        add_import_roots([os.getcwd()])
    try:
        return int(args.handler(args) or 0)
    except PbtnasError as exc:
        print(f"error: {exc}{_write_hint(args, exc)}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader went away (``pbtnas status RUN | head``): stop quietly like other Unix tools;
        # stdout goes to /dev/null so the interpreter's final flush cannot fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as exc:
        from pbtnas.rundir.atomic import DISK_ERRNOS, WriteError

        if exc.errno not in DISK_ERRNOS:
            raise  # not the file system refusing a write: a bug to see in full
        error = WriteError(exc.errno, exc.filename or "a file", exc.strerror or "")
        print(f"error: {error}{_write_hint(args, error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        run_dir = getattr(args, "out", None) or getattr(args, "run_dir", None)
        hint = f"; continue with: pbtnas resume {run_dir}" if run_dir else ""
        print(f"interrupted{hint}", file=sys.stderr)
        return 130


def _write_hint(args: argparse.Namespace, exc: BaseException) -> str:
    """What to do after the file system refused a write (a full disk, a read-only or foreign
    folder): a run that has committed a step continues with ``pbtnas resume``; one that has not
    is simply started again."""
    from pbtnas.rundir.atomic import WriteError

    if not isinstance(exc, WriteError) or args.command not in ("run", "resume"):
        return ""
    run_dir = getattr(args, "out", None) if args.command == "run" else getattr(args, "run_dir", None)
    if not run_dir:
        return ""
    import errno
    from pathlib import Path

    fix = "free space" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "make it writable"
    if (Path(run_dir) / "population.json").is_file():
        return f"; {fix} and continue with: pbtnas resume {run_dir}"
    return f"; {fix} and start the run again"
