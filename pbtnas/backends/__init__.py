"""Backends: where member steps run. ``make_backend`` picks one from the config."""

from __future__ import annotations

from pbtnas.backends.base import Backend, TrainJob, TrainResult
from pbtnas.backends.inprocess import InProcessBackend
from pbtnas.backends.local import LocalBackend
from pbtnas.config import RunConfig


def make_backend(config: RunConfig) -> Backend:
    if config.backend == "inprocess":
        return InProcessBackend()
    if config.backend == "local":
        return LocalBackend(config.resolved_workers, config.threads_per_member)
    if config.backend == "ray":
        from pbtnas.backends.ray_backend import RayBackend

        return RayBackend.from_config(config)
    raise ValueError(f"unknown backend {config.backend!r}")


__all__ = ["Backend", "InProcessBackend", "LocalBackend", "TrainJob", "TrainResult", "make_backend"]
