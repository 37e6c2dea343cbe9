"""Experiment loggers: TensorBoard, Weights & Biases, MLflow. Chosen with ``loggers`` in the
config (``--set loggers=tensorboard,mlflow``); each backend is imported only when chosen. A run
from the command line whose config names none logs to TensorBoard when it is installed
(``--set loggers=none`` turns that off). Nothing is written before the run's first event.

Loggers are runner observers (:class:`~pbtnas.engine.observers.RunObserver`:
``on_member_result``, ``on_child``, ``on_step_end``, ``on_finish``). Every backend receives the
same tags, with the PBT step (1-based: "after step s") as the x axis:

* ``member/slotNN/fitness``, ``member/slotNN/<metric>``, ``member/slotNN/seconds`` and
  ``member/slotNN/uid`` - per population slot (a slot keeps its tag when a child replaces its
  member; ``uid`` shows who holds it); RL adds ``frames``, ``fps``, ``updates_per_s``,
  ``eval_return_std`` / ``_min`` / ``_max`` among the metrics, and ``member/slotNN/fitness_by_frames``
  with environment frames as its x axis (TensorBoard, MLflow);
* ``population/fitness_best``, ``_mean``, ``_median``, ``_worst``, ``population/best_ever``,
  ``population/children``, ``population/failed``;
* ``final/<metric>`` - the final evaluation of the delivered network;
* text ``lineage`` - one line per child: parents and the genes taken from the donor;
* text ``best_genome`` - the best network's genome (a gene/option table) whenever the best
  changes, and ``final_genome`` - the delivered network's, at the end;
* image ``samples`` - a task's sample grid of the best member after each step (the GAN's
  ``samples/after_step_NNNN.png``);
* video ``episode/final`` - one evaluation episode of the delivered agent (RL tasks whose
  environment renders: dm_control with a renderer, gymnasium with ``rgb_array``), at the end.

What a logger writes is what the run has committed: a step's scalars, texts and images are held
until the step is committed (``on_step_end``; in ``mode: async`` and with BOHB each result is
committed before it is reported) and then written in one go. A run killed in the middle of a step
redoes that step when it resumes, and the step reaches every backend once, never twice; the
config (text ``config``) is written at the step a process starts from (0 for a new run), so a
resume that changed it (``--set steps=...``) shows where.

Where they write: TensorBoard ``RUN_DIR/tensorboard``; W&B its usual place under ``RUN_DIR``
(project ``$WANDB_PROJECT`` or ``pbtnas``; ``WANDB_MODE=offline`` works without a server);
MLflow ``$MLFLOW_TRACKING_URI`` or a file store in ``RUN_DIR/mlruns`` (MLflow 3 calls the file store
"maintenance mode"; pbtnas opts in with ``MLFLOW_ALLOW_FILE_STORE=true`` only when it chose it).
"""

from __future__ import annotations

import importlib.util
import math
import os
import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from pbtnas.engine.observers import RunObserver
from pbtnas.errors import ConfigError, require
from pbtnas.rundir.records import BestRecord
from pbtnas.search.schedules import each_result_committed

if TYPE_CHECKING:
    from pbtnas.tasks.base import Task

KNOWN = ("tensorboard", "wandb", "mlflow")


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class MetricLogger(RunObserver):
    """Base of every logger: turns runner events into tagged scalars, text, images and videos.
    Subclasses implement :meth:`log_scalars` (and optionally :meth:`log_text`, :meth:`log_image`,
    :meth:`log_video`, :meth:`close`); they must not raise on a missing value and never change the
    run. What they are given has been committed (see the module docstring)."""

    name = "logger"

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self._children: dict[int, int] = {}
        self._lineage: list[str] = []
        self._config_logged = False
        self._opened = False
        self._best_logged: tuple | None = None
        self._held: list[tuple[int, Callable[[], None]]] = []  # (PBT step it belongs to, the write)
        self._each_result_committed = False  # async and BOHB commit a result before reporting it
        self._task: Task | None = None  # the runner's task, for the final episode
        #: the step the config is logged at: where this process starts (0 for a new run)
        self.config_step = 0

    # -- what a backend implements ------------------------------------------------------------
    def log_scalars(self, scalars: dict[str, float], step: int) -> None:
        raise NotImplementedError

    def log_scalars_at(self, scalars: dict[str, float], x: int) -> None:
        """Scalars against another x axis than the PBT step (environment frames); default: with
        ``x`` as the step of those tags only."""
        self.log_scalars(scalars, x)

    def log_text(self, tag: str, text: str, step: int) -> None:
        """Optional: a line of text (default: ignored)."""

    def log_image(self, tag: str, path: Path, step: int) -> None:
        """Optional: an image file (a PNG sample grid; default: ignored)."""

    def log_video(self, tag: str, frames: list, fps: int, step: int) -> None:
        """Optional: a video from ``frames`` (H, W, 3 uint8 arrays; default: ignored)."""

    def log_config(self, config: dict) -> None:
        """Optional: the run's resolved config, once per process (:attr:`config_step`: the step
        it starts from; default: ignored)."""

    def open(self) -> None:
        """Start the backend (files, run); called once, at the first event, so a run that stops
        before it starts (a bad option) leaves nothing behind."""

    def close(self) -> None:
        """Flush and release the backend."""

    # -- holding until committed --------------------------------------------------------------
    def _config_once(self, step: int) -> None:
        # Loggers are made before the run directory is written, so the config is read lazily.
        if self._config_logged:
            return
        self._config_logged = True
        config = _read_config(self.run_dir)
        self._each_result_committed = each_result_committed(config)
        self.config_step = step
        if config:
            self._hold(step, lambda: self.log_config(config))

    def _hold(self, step: int, write: Callable[[], None]) -> None:
        """Keep ``write`` until PBT step ``step`` (1-based x value) is committed."""
        self._held.append((step, write))

    def _release(self, upto: float) -> None:
        """Write what was held for the committed steps (x up to ``upto``), in the order it came."""
        ready = [write for step, write in self._held if step <= upto]
        if not ready:
            return
        self._held = [(step, write) for step, write in self._held if step > upto]
        if not self._opened:
            self._opened = True
            self.open()
        for write in ready:
            write()

    # -- runner observer hooks ----------------------------------------------------------------
    def on_member_result(self, step: int, member, result) -> None:
        self._config_once(step)
        prefix = f"member/slot{result.slot:02d}"
        scalars = {f"{prefix}/uid": float(result.uid), f"{prefix}/seconds": float(result.seconds)}
        if _finite(result.fitness):
            scalars[f"{prefix}/fitness"] = float(result.fitness)
        for key, value in (result.metrics or {}).items():
            if _finite(value):
                scalars[f"{prefix}/{key}"] = float(value)
        self._hold(step + 1, lambda: self.log_scalars(scalars, step + 1))
        frames = (result.metrics or {}).get("frames")
        if frames is not None and _finite(frames) and _finite(result.fitness):
            # RL: the return against environment frames, as CleanRL and DrQ-v2 plot it
            by_frames = {f"{prefix}/fitness_by_frames": float(result.fitness)}
            self._hold(step + 1, lambda: self.log_scalars_at(by_frames, int(frames)))
        if self._each_result_committed:
            self._release(math.inf)

    def on_child(self, step: int, member, record) -> None:
        self._config_once(step)
        self._children[step] = self._children.get(step, 0) + 1
        genes = ", ".join(record.genes_from_donor) or "-"
        line = (
            f"after step {step + 1}: uid {member.uid} in slot {member.slot} <- primary {record.primary}, "
            f"donor {record.donor} ({record.operator}); genes from donor: {genes}"
        )

        def write() -> None:
            self._lineage.append(line)
            self.log_text("lineage", line, step + 1)

        self._hold(step + 1, write)

    def on_step_end(self, step: int, runner) -> None:
        self._config_once(step)
        self._task = runner.task
        values = [m.fitness for m in runner.members if _finite(m.fitness)]
        scalars = {"population/children": float(self._children.get(step, 0)), "population/failed": float(len(runner.members) - len(values))}
        if values:
            scalars.update(
                {
                    "population/fitness_best": max(values),
                    "population/fitness_mean": statistics.fmean(values),
                    "population/fitness_median": statistics.median(values),
                    "population/fitness_worst": min(values),
                }
            )
        best: BestRecord | None = getattr(runner, "best", None)
        if best and _finite(best.fitness):
            scalars["population/best_ever"] = float(best.fitness)
        self._hold(step + 1, lambda: self.log_scalars(scalars, step + 1))
        if best and best.genome and (best.uid, best.fitness) != self._best_logged:
            self._best_logged = (best.uid, best.fitness)
            text = genome_text(best.genome, f"member {best.uid}, fitness {best.fitness:.6g}, after step {step + 1}")
            self._hold(step + 1, lambda: self.log_text("best_genome", text, step + 1))
        # the runner draws a task's samples (GAN grids) before it reports the step
        grid = self.run_dir / "samples" / f"after_step_{step + 1:04d}.png"
        if grid.is_file():
            self._hold(step + 1, lambda: self.log_image("samples", grid, step + 1))
        self._release(step + 1)

    def on_finish(self, summary: dict) -> None:
        steps = int(summary.get("steps_done") or 0)
        self._config_once(steps)
        self._release(math.inf)
        if not self._opened:
            self._opened = True
            self.open()
        scalars = {f"final/{k}": float(v) for k, v in (summary.get("final_metrics") or {}).items() if _finite(v)}
        if scalars:
            self.log_scalars(scalars, steps)
        if summary.get("best_genome"):
            self.log_text(
                "final_genome",
                genome_text(
                    summary["best_genome"],
                    (
                        f"delivered network: member {summary.get('best_uid')} ({summary.get('final_selection')}), "
                        f"{summary.get('final_metric_name')} {summary.get('final_metric')}"
                    ),
                ),
                steps,
            )
        self._final_episode(steps)
        self.close()

    def _final_episode(self, step: int) -> None:
        """One evaluation episode of the delivered agent as a video, for tasks that record one
        (RL) and loggers that show videos; why there is none otherwise, as text ``episode``."""
        record = None if self._task is None else self._task.record_episode
        final = self.run_dir / "final" / "member.pt"
        if record is None or type(self).log_video is MetricLogger.log_video or not final.is_file():
            return
        from pbtnas.errors import PbtnasError
        from pbtnas.rundir.store import load_member

        try:
            genome, state, _ = load_member(final)
            frames, total = record(genome, state, size=EPISODE_SIZE, max_frames=EPISODE_FRAMES)
        except PbtnasError as exc:
            self.log_text("episode", f"no video of the delivered agent: {exc}", step)
            return
        except Exception as exc:  # noqa: BLE001 - a video must never fail a finished run
            self.log_text("episode", f"no video of the delivered agent: {type(exc).__name__}: {exc}", step)
            return
        self.log_video("episode/final", frames, EPISODE_FPS, step)
        self.log_text("episode", f"delivered agent: one deterministic evaluation episode, return {total:.1f}, {len(frames)} frames", step)


#: the delivered agent's episode video: frames per second, side in pixels, most frames
EPISODE_FPS, EPISODE_SIZE, EPISODE_FRAMES = 25, 128, 200


class TensorBoardLogger(MetricLogger):
    """TensorBoard event files in ``RUN_DIR/tensorboard`` (``tensorboard --logdir RUN_DIR``)."""

    name = "tensorboard"

    def __init__(self, run_dir: str | Path):
        super().__init__(run_dir)
        if importlib.util.find_spec("tensorboard") is None:
            require("tensorboard", "tensorboard")  # raises the install hint
        self.log_dir = self.run_dir / "tensorboard"
        self.writer: Any = None  # tensorboard's SummaryWriter, made at the first event

    def open(self) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(self.log_dir))

    def log_scalars(self, scalars: dict[str, float], step: int) -> None:
        for tag, value in scalars.items():
            self.writer.add_scalar(tag, value, step)
        self.writer.flush()

    def log_text(self, tag: str, text: str, step: int) -> None:
        self.writer.add_text(tag, text, step)

    def log_image(self, tag: str, path: Path, step: int) -> None:
        import numpy as np
        from PIL import Image

        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"))
        self.writer.add_image(tag, pixels, step, dataformats="HWC")
        self.writer.flush()

    def log_video(self, tag: str, frames: list, fps: int, step: int) -> None:
        """An animated GIF in an image summary: what ``SummaryWriter.add_video`` writes, without
        the moviepy 1.x it needs (moviepy 2 dropped the ``moviepy.editor`` torch imports);
        TensorBoard's Images tab plays it."""
        from torch.utils.tensorboard.summary import Summary

        gif = gif_bytes(frames, fps)
        height, width = frames[0].shape[:2]
        image = Summary.Image(height=height, width=width, colorspace=3, encoded_image_string=gif)
        self.writer.file_writer.add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), step)
        self.writer.flush()

    def log_config(self, config: dict) -> None:
        import yaml

        self.writer.add_text("config", "```\n" + yaml.safe_dump(config, sort_keys=False) + "```", self.config_step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class WandbLogger(MetricLogger):
    """Weights & Biases; set ``WANDB_MODE=offline`` to log without a server."""

    name = "wandb"

    def __init__(self, run_dir: str | Path):
        super().__init__(run_dir)
        self.wandb = require("wandb", "wandb")
        self.run: Any = None  # the wandb run, made at the first event
        self._step = 0

    def open(self) -> None:
        self.run = self.wandb.init(
            project=os.environ.get("WANDB_PROJECT", "pbtnas"), name=self.run_dir.name, dir=str(self.run_dir), reinit="create_new"
        )

    def log_scalars(self, scalars: dict[str, float], step: int) -> None:
        self._step = max(self._step, step)  # W&B needs a non-decreasing step
        self.run.log(dict(scalars), step=self._step)

    def log_scalars_at(self, scalars: dict[str, float], x: int) -> None:
        """W&B has one step axis per run: ``member/slotNN/frames`` is logged with the step, and
        W&B plots any metric against it."""

    def log_config(self, config: dict) -> None:
        self.run.config.update(config, allow_val_change=True)

    def log_text(self, tag: str, text: str, step: int) -> None:
        if tag != "lineage":  # the lineage goes into the summary at the end
            self.run.summary[tag] = text

    def close(self) -> None:
        if self.run is None:
            return
        if self._lineage:
            self.run.summary["lineage"] = "\n".join(self._lineage)
        self.run.finish()


class MlflowLogger(MetricLogger):
    """MLflow; tracking URI from ``MLFLOW_TRACKING_URI`` or a file store in ``RUN_DIR/mlruns``."""

    name = "mlflow"

    def __init__(self, run_dir: str | Path):
        super().__init__(run_dir)
        self.mlflow = require("mlflow", "mlflow")
        self.client: Any = None  # mlflow's client and run id, made at the first event
        self.run_id: str | None = None

    def open(self) -> None:
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
            self.client.log_batch(self.run_id, params=params[start : start + 100])

    def log_scalars(self, scalars: dict[str, float], step: int) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(key=k, value=float(v), timestamp=now, step=int(step)) for k, v in scalars.items()]
        self.client.log_batch(self.run_id, metrics=metrics)

    def log_text(self, tag: str, text: str, step: int) -> None:
        if tag != "lineage":  # the lineage is written once, as lineage.txt
            self.client.log_text(self.run_id, text + "\n", f"{tag}.md")

    def close(self) -> None:
        if self.run_id is None:
            return
        if self._lineage:
            self.client.log_text(self.run_id, "\n".join(self._lineage) + "\n", "lineage.txt")
        self.client.set_terminated(self.run_id)


LOGGERS = {"tensorboard": TensorBoardLogger, "wandb": WandbLogger, "mlflow": MlflowLogger}


#: ``loggers: none`` (or ``off``) turns every logger off, the default TensorBoard included
OFF = ("none", "off")


def default_loggers() -> list[str]:
    """What a run logs to when its config names no logger: TensorBoard when it is installed."""
    return ["tensorboard"] if importlib.util.find_spec("tensorboard") is not None else []


def resolve_names(names) -> list[str]:
    """The loggers a config's ``loggers`` asks for: the defaults when empty, none for ``none``."""
    if isinstance(names, str):
        names = [n for n in names.split(",") if n]
    names = [str(n).strip() for n in (names or []) if n is not None and str(n).strip()]
    if not names:
        return default_loggers()
    if any(n in OFF for n in names):
        if len(names) > 1:
            raise ConfigError(f"'loggers: none' turns every logger off; it cannot go with {[n for n in names if n not in OFF]}")
        return []
    return names


def make_loggers(names, run_dir: str | Path) -> list[MetricLogger]:
    """Loggers for ``names`` (a list or a comma-separated string); unknown names are an error.
    Nothing is written before the run's first event."""
    if isinstance(names, str):
        names = [n for n in names.split(",") if n]
    names = [n for n in names if n not in OFF]
    unknown = [n for n in names if n not in LOGGERS]
    if unknown:
        raise ConfigError(f"unknown logger(s) {unknown} in 'loggers'; known: {', '.join(KNOWN)} (or none)")
    return [LOGGERS[n](run_dir) for n in dict.fromkeys(names)]


def gif_bytes(frames: list, fps: int) -> bytes:
    """``frames`` (H, W, 3 uint8 arrays) as an animated GIF that loops, written by PIL."""
    import io

    from PIL import Image

    images = [Image.fromarray(frame) for frame in frames]
    out = io.BytesIO()
    images[0].save(out, format="GIF", save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)
    return out.getvalue()


def genome_text(genome: dict, title: str) -> str:
    """A genome as a markdown table (TensorBoard renders it), under a title line."""
    rows = "\n".join(f"| {gene} | {option} |" for gene, option in genome.items())
    return f"{title}\n\n| gene | option |\n| --- | --- |\n{rows}"


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
