"""Whether a torch device can be used by this process, said in one line, and the checks a run
makes before it trains (:func:`prepare_to_train`).

Members train where the backend runs them: on this machine for the in-process and local
backends (so a run checks the device before it starts), on the workers for Ray (whose driver
may have no GPU at all; the workers' own errors then say it)."""

from __future__ import annotations

import torch


def device_problem(device: object) -> str | None:
    """Why ``device`` cannot be used here, as the end of a sentence ("'cuda' ..."), or None."""
    try:
        parsed = torch.device(str(device))
    except (RuntimeError, ValueError):
        return "is not a torch device (cpu, cuda, cuda:1, mps, ...)"
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            why = " (this torch build has no CUDA)" if torch.version.cuda is None else ""
            return f"names a CUDA device but torch sees no CUDA device here{why}"
        count = torch.cuda.device_count()
        if parsed.index is not None and parsed.index >= count:
            return f"names GPU {parsed.index} but torch sees {count} GPU(s) here (cuda:0 to cuda:{count - 1})"
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        return "names Apple's MPS device but torch sees none here"
    return None


def usable_here(device: object) -> str:
    """``device`` when this process can use it, else ``"cpu"`` (for work the driver does once,
    such as a GAN task's metric classifier, on a driver without the workers' GPUs)."""
    return str(device) if device_problem(device) is None else "cpu"


def check_device_for_run(config) -> None:
    """Before a run trains (``run``, ``resume``, ``check``): the config's ``task.device`` must be
    usable here when members train here; on Ray the workers' devices count, which the driver
    cannot see. Reading a finished run (status, report, export) never asks."""
    from pbtnas.errors import ConfigError

    device = config.task.get("device") if isinstance(config.task, dict) else None
    if device is None or config.backend == "ray":
        return
    problem = device_problem(device)
    if problem is not None:
        raise ConfigError(f"task.device {device!r} {problem}; use --device cpu, or --backend ray for a cluster whose workers have it")


def prepare_to_train(config, task) -> None:
    """What a run checks before it trains, once, in the driver (``run``, ``resume``, ``check``,
    ``compare``): the device, then the task's own checks (:meth:`~pbtnas.tasks.base.Task.prepare`:
    data, environment, renderer)."""
    check_device_for_run(config)
    task.prepare()


def task_config_here(task_config: dict) -> dict:
    """``task_config`` with its ``device`` replaced by one this process can use: for reading a
    finished run's networks elsewhere (export, load, soups of a GPU run on a laptop)."""
    device = task_config.get("device")
    if device is None or device_problem(device) is None:
        return task_config
    return {**task_config, "device": "cpu"}
