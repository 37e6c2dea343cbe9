"""The ``pbtnas`` command line. Every module in :mod:`pbtnas.cli.commands` defines
``register(subparsers)`` and adds its subcommands; this file only dispatches and turns user
errors into one line."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from pbtnas.errors import PbtnasError


def build_parser() -> argparse.ArgumentParser:
    from pbtnas.cli import commands

    parser = argparse.ArgumentParser(
        prog="pbtnas",
        description="Population-based NAS by architecture mixing with shrink-perturb weight inheritance (PBT-NAS).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except PbtnasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        run_dir = getattr(args, "out", None) or getattr(args, "run_dir", None)
        hint = f"; continue with: pbtnas resume {run_dir}" if run_dir else ""
        print(f"interrupted{hint}", file=sys.stderr)
        return 130
