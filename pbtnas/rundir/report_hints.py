"""What a task asks its report to show, as plain data recorded in ``run_info.json``.

A report never imports the task of the run it shows (a run directory someone sent is data, not
code), so the task says at run start what its report shows - a one-line headline, the title of
the training-metrics section, whether the delivered member can be recorded as a video - through
:meth:`pbtnas.tasks.base.Task.report_hints`. The engine writes the answer into ``run_info.json``
(key ``report``) and the report reads it back with :func:`hints_from_record`. A run made before
this record existed is shown by the name-based rules of
:func:`pbtnas.analysis.report.legacy.legacy_hints`.

This module imports nothing of pbtnas: tasks, the run directory and the report all use it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

#: the key of ``run_info.json`` that holds the hints
REPORT_KEY = "report"


@dataclass(frozen=True)
class ReportHints:
    """What the report of a task's run shows, beyond what every run shows. Every field is plain
    data (the report runs no task code); ``None`` or ``False`` means "the report's default".

    * ``headline``: what ran, in a few words, e.g. ``"classification on cifar10"``; the report's
      first line and the overview's ``task`` row. Default: the task's name (for a task from a
      file or module: its class and where it comes from).
    * ``metrics_title``: the title of the section with the training metrics the task reports,
      e.g. ``"Returns and training metrics"``. Default: that title when a metric is called
      ``train_return``, otherwise ``"Training metrics"``.
    * ``episode_video``: the report may record one evaluation episode of the delivered member
      as a video, through the task's ``record_episode`` hook. The report builds the task for
      that, so it does so only for a task that is installed code, never one a run directory's
      config names as a file or module.
    """

    headline: str | None = None
    metrics_title: str | None = None
    episode_video: bool = False

    def to_record(self) -> dict[str, Any]:
        """The hints as the JSON object ``run_info.json`` holds."""
        return dataclasses.asdict(self)


def hints_from_record(record: object) -> ReportHints | None:
    """The hints a ``run_info.json`` recorded, or ``None`` where it recorded none (a run made
    before hints existed). A field of the wrong type (a damaged or forged file) reads as its
    default: a report shows what it can."""
    if not isinstance(record, dict):
        return None
    text = {name: value if isinstance(value, str) and value.strip() else None for name, value in record.items()}
    return ReportHints(
        headline=text.get("headline"),
        metrics_title=text.get("metrics_title"),
        episode_video=record.get("episode_video") is True,
    )
