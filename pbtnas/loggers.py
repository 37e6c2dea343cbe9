"""Experiment loggers: TensorBoard, Weights & Biases, MLflow. Chosen with ``loggers`` in the
config (``--set loggers=tensorboard,mlflow``); each backend is imported only when chosen.

Loggers are runner observers (``on_member_result``, ``on_child``, ``on_step_end``,
``on_finish``). Every backend receives the same tags, with the PBT step (1-based: "after step
s") as the x axis:

* ``member/slotNN/fitness``, ``member/slotNN/<metric>``, ``member/slotNN/seconds`` and
  ``member/slotNN/uid`` - per population slot (a slot keeps its tag when a child replaces its
  member; ``uid`` shows who holds it); RL adds ``frames``, ``fps``, ``updates_per_s``,
  ``eval_return_std`` / ``_min`` / ``_max`` among the metrics, and ``member/slotNN/fitness_by_frames``
  with environment frames as its x axis (TensorBoard, MLflow);
* ``population/fitness_best``, ``_mean``, ``_median``, ``_worst``, ``population/best_ever``,
  ``population/children``, ``population/failed``;
* ``final/<metric>`` - the final evaluation of the delivered network;
* text ``lineage`` - one line per child: parents and the genes taken from the donor.

Where they write: TensorBoard ``RUN_DIR/tensorboard``; W&B its usual place under ``RUN_DIR``
(project ``$WANDB_PROJECT`` or ``pbtnas``; ``WANDB_MODE=offline`` works without a server);
MLflow ``$MLFLOW_TRACKING_URI`` or a file store in ``RUN_DIR/mlruns`` (MLflow 3 calls the file store
"maintenance mode"; pbtnas opts in with ``MLFLOW_ALLOW_FILE_STORE=true`` only when it chose it).
"""

from __future__ import annotations

import math
import os
import statistics
from pathlib import Path
from typing import Any

from .errors import ConfigError, require

KNOWN = ("tensorboard", "wandb", "mlflow")


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class MetricLogger:
    """Base of every logger: turns runner events into tagged scalars and text. Subclasses
    implement :meth:`log_scalars` (and optionally :meth:`log_text`, :meth:`close`); they must not
    raise on a missing value and never change the run."""

    name = "logger"

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self._children: dict[int, int] = {}
        self._lineage: list[str] = []
        self._config_logged = False

    # -- what a backend implements ------------------------------------------------------------
    def log_scalars(self, scalars: dict[str, float], step: int) -> None:
        raise NotImplementedError

    def log_scalars_at(self, scalars: dict[str, float], x: int) -> None:
        """Scalars against another x axis than the PBT step (environment frames); default: with
        ``x`` as the step of those tags only."""
        self.log_scalars(scalars, x)

    def log_text(self, tag: str, text: str, step: int) -> None:
        """Optional: a line of text (default: ignored)."""

    def log_config(self, config: dict) -> None:
        """Optional: the run's resolved config, once, at the first event (default: ignored)."""

    def close(self) -> None:
        """Flush and release the backend."""

    def _config_once(self) -> None:
        # Loggers are made before the run directory is written, so the config is read lazily.
        if not self._config_logged:
            self._config_logged = True
            config = _read_config(self.run_dir)
            if config:
                self.log_config(config)

    # -- runner observer hooks ----------------------------------------------------------------
    def on_member_result(self, step: int, member, result) -> None:
        self._config_once()
        prefix = f"member/slot{result.slot:02d}"
        scalars = {f"{prefix}/uid": float(result.uid), f"{prefix}/seconds": float(result.seconds)}
        if _finite(result.fitness):
            scalars[f"{prefix}/fitness"] = float(result.fitness)
        for key, value in (result.metrics or {}).items():
            if _finite(value):
                scalars[f"{prefix}/{key}"] = float(value)
        self.log_scalars(scalars, step + 1)
        frames = (result.metrics or {}).get("frames")
        if _finite(frames) and _finite(result.fitness):
            # RL: the return against environment frames, as CleanRL and DrQ-v2 plot it
            self.log_scalars_at({f"{prefix}/fitness_by_frames": float(result.fitness)}, int(frames))

    def on_child(self, step: int, member, record) -> None:
        self._config_once()
        self._children[step] = self._children.get(step, 0) + 1
        genes = ", ".join(record.genes_from_donor) or "-"
        line = (f"after step {step + 1}: uid {member.uid} in slot {member.slot} <- primary {record.primary}, "
                f"donor {record.donor} ({record.operator}); genes from donor: {genes}")
        self._lineage.append(line)
        self.log_text("lineage", line, step + 1)

    def on_step_end(self, step: int, runner) -> None:
        self._config_once()
        values = [m.fitness for m in runner.members if _finite(m.fitness)]
        scalars = {"population/children": float(self._children.get(step, 0)),
                   "population/failed": float(len(runner.members) - len(values))}
        if values:
            scalars.update({"population/fitness_best": max(values), "population/fitness_mean": statistics.fmean(values),
                            "population/fitness_median": statistics.median(values),
                            "population/fitness_worst": min(values)})
        best = getattr(runner, "best", None)
        if best and _finite(best.get("fitness")):
            scalars["population/best_ever"] = float(best["fitness"])
        self.log_scalars(scalars, step + 1)

    def on_finish(self, summary: dict) -> None:
        scalars = {f"final/{k}": float(v) for k, v in (summary.get("final_metrics") or {}).items() if _finite(v)}
        if scalars:
            self.log_scalars(scalars, int(summary.get("steps_done") or 0))
        self.close()


class TensorBoardLogger(MetricLogger):
    """TensorBoard event files in ``RUN_DIR/tensorboard`` (``tensorboard --logdir RUN_DIR``)."""

    name = "tensorboard"

    def __init__(self, run_dir: str | Path):
        super().__init__(run_dir)
        require("tensorboard", "tensorboard")
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = self.run_dir / "tensorboard"
        self.writer = SummaryWriter(log_dir=str(self.log_dir))

    def log_scalars(self, scalars: dict[str, float], step: int) -> None:
        for tag, value in scalars.items():
            self.writer.add_scalar(tag, value, step)
        self.writer.flush()

    def log_text(self, tag: str, text: str, step: int) -> None:
        self.writer.add_text(tag, text, step)

    def log_config(self, config: dict) -> None:
        import yaml

        self.writer.add_text("config", "```\n" + yaml.safe_dump(config, sort_keys=False) + "```", 0)

    def close(self) -> None:
        self.writer.close()


class WandbLogger(MetricLogger):
    """Weights & Biases; set ``WANDB_MODE=offline`` to log without a server."""

    name = "wandb"

    def __init__(self, run_dir: str | Path):
        super().__init__(run_dir)
        self.wandb = require("wandb", "wandb")
        self.run = self.wandb.init(project=os.environ.get("WANDB_PROJECT", "pbtnas"), name=self.run_dir.name,
                                   dir=str(self.run_dir), reinit="create_new")
        self._step = 0

    def log_scalars(self, scalars: dict[str, float], step: int) -> None:
        self._step = max(self._step, step)  # W&B needs a non-decreasing step
        self.run.log(dict(scalars), step=self._step)

    def log_scalars_at(self, scalars: dict[str, float], x: int) -> None:
        """W&B has one step axis per run: ``member/slotNN/frames`` is logged with the step, and
        W&B plots any metric against it."""

    def log_config(self, config: dict) -> None:
        self.run.config.update(config, allow_val_change=True)

    def close(self) -> None:
        if self._lineage:
            self.run.summary["lineage"] = "\n".join(self._lineage)
        self.run.finish()


class MlflowLogger(MetricLogger):
    """MLflow; tracking URI from ``MLFLOW_TRACKING_URI`` or a file store in ``RUN_DIR/mlruns``."""

    name = "mlflow"

    def __init__(self, run_dir: str | Path):
        super().__init__(run_dir)
        self.mlflow = require("mlflow", "mlflow")
        uri = os.environ.get("MLFLOW_TRACKING_URI")
        if not uri:
            # Our default is a file store beside the run, needing no server and no database
            # driver; MLflow 3 keeps it behind this opt-in (point MLFLOW_TRACKING_URI elsewhere
            # for a database or server).
            uri = (self.run_dir / "mlruns").resolve().as_uri()
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.client = self.mlflow.tracking.MlflowClient(tracking_uri=uri)
        experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME", "pbtnas")
        found = self.client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else self.client.create_experiment(experiment)
        self.run_id = self.client.create_run(experiment_id, run_name=self.run_dir.name).info.run_id

    def log_config(self, config: dict) -> None:
        from mlflow.entities import Param

        params = [Param(k, str(v)[:500]) for k, v in _flatten(config).items()]
        for start in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=params[start:start + 100])

    def log_scalars(self, scalars: dict[str, float], step: int) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(key=k, value=float(v), timestamp=now, step=int(step)) for k, v in scalars.items()]
        self.client.log_batch(self.run_id, metrics=metrics)

    def close(self) -> None:
        if self._lineage:
            self.client.log_text(self.run_id, "\n".join(self._lineage) + "\n", "lineage.txt")
        self.client.set_terminated(self.run_id)


LOGGERS = {"tensorboard": TensorBoardLogger, "wandb": WandbLogger, "mlflow": MlflowLogger}


def make_loggers(names, run_dir: str | Path) -> list[MetricLogger]:
    """Loggers for ``names`` (a list or a comma-separated string); unknown names are an error."""
    if isinstance(names, str):
        names = [n for n in names.split(",") if n]
    unknown = [n for n in names if n not in LOGGERS]
    if unknown:
        raise ConfigError(f"unknown logger(s) {unknown} in 'loggers'; known: {', '.join(KNOWN)}")
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    return [LOGGERS[n](run_dir) for n in dict.fromkeys(names)]


def _read_config(run_dir: Path) -> dict:
    path = run_dir / "config.yaml"
    if not path.is_file():
        return {}
    import yaml

    with open(path) as fh:
        return yaml.safe_load(fh) or {}


def _flatten(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
