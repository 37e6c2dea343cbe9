"""``pbtnas report``: an HTML page with PNG plots rebuilt from a run directory.

``build_report(RUN_DIR)`` writes ``RUN_DIR/report/index.html`` and its figures: fitness over time,
the lineage tree and which genes each child took from which parent, option frequencies per gene,
the best architecture, training metrics (RL returns), for a multi-objective run its Pareto front
(against every evaluated member, with the front members' lineage) and hypervolume per step, and,
for tasks that draw them, sample images.
It works on finished, running, stopped and older runs alike; the page says which.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from pbtnas.analysis.report.history import MemberRecord, RunHistory, load_history, sample_step

__all__ = ["MemberRecord", "RunHistory", "build_report", "load_history", "sample_step"]

MAX_SAMPLES = 8


def build_report(run_dir: str | Path, out: str | Path | None = None, history: RunHistory | None = None) -> Path:
    """Write the report of ``run_dir`` into ``out`` (default ``RUN_DIR/report``); return the
    path of ``index.html``. ``history`` is the run's :func:`load_history`, when the caller has
    read it already."""
    from pbtnas.analysis.report import plots
    from pbtnas.analysis.report.page import render
    from pbtnas.analysis.report.video import episode_video
    from pbtnas.rundir.atomic import atomic_write_bytes

    history = history if history is not None else load_history(run_dir)
    out = Path(out) if out is not None else Path(run_dir) / "report"
    out.mkdir(parents=True, exist_ok=True)
    figures = {
        "fitness": plots.fitness_plot,
        "lineage": plots.lineage_plot,
        "inheritance": plots.inheritance_plot,
        "options": plots.options_plot,
        "architecture": plots.architecture_plot,
        "metrics": plots.metrics_plot,
        "returns": plots.returns_plot,
        "front": plots.front_plot,
        "hypervolume": plots.hypervolume_plot,
    }
    images: dict[str, str | None] = {}
    for key, draw in figures.items():
        target = out / f"{key}.png"
        drawn = draw(history, target)
        if drawn is None and target.exists():
            target.unlink()  # a stale figure of an earlier report
        images[key] = target.name if drawn else None
    samples = _copy_samples(history.samples, out / "samples")
    video, caption = episode_video(history, out / "episode.gif")
    if video is None and (out / "episode.gif").exists():
        (out / "episode.gif").unlink()  # a stale video of an earlier report
    images["episode"] = video
    atomic_write_bytes(out / "index.html", render(history, images, samples, _version(), caption).encode("utf-8"))
    _shareable(out / "index.html")  # written through mkstemp (0600): a report is for others to read
    return out / "index.html"


def _shareable(path: Path) -> None:
    import os

    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def _copy_samples(paths: list[Path], target: Path) -> list[str]:
    """Copy up to MAX_SAMPLES sample grids, evenly spread over the run and always the last."""
    if not paths:
        return []
    if len(paths) > MAX_SAMPLES:
        idx = sorted({round(i * (len(paths) - 1) / (MAX_SAMPLES - 1)) for i in range(MAX_SAMPLES)})
        paths = [paths[i] for i in idx]
    target.mkdir(parents=True, exist_ok=True)
    names = []
    for p in paths:
        shutil.copyfile(p, target / p.name)
        names.append(f"samples/{p.name}")
    return names


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("pbtnas")
    except Exception:  # noqa: BLE001 - not installed as a distribution
        return "(development)"
