"""Subcommands of the ``pbtnas`` CLI; each module defines ``register(subparsers)``."""
