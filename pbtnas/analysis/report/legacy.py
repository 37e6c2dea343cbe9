"""How the report shows a run made before tasks declared their report hints.

Since ``run_info.json`` records a task's :class:`~pbtnas.rundir.report_hints.ReportHints`, the
report asks the run, not the task's name, what to show. Older run directories have no such
record; for them the report keeps the rules it had, keyed on the built-in tasks' names, here and
nowhere else. Nothing is imported from the run (its task is never built).
"""

from __future__ import annotations

from pbtnas.rundir.report_hints import ReportHints

#: the task names these rules know (a name with a colon elsewhere is a file or module)
BUILTIN_NAMES = ("rl", "gan", "classification", "simulated")


def legacy_hints(config: dict, task_facts: dict | None = None, defaults: dict | None = None) -> ReportHints:
    """The hints a built-in task gives today, worked out from the run's config, the task's
    ``describe()`` facts of its ``run_started`` event and the option defaults ``run_info.json``
    recorded (each may be missing in an old run); the report's defaults for any other task."""
    facts = task_facts or {}
    task = dict(config.get("task") or {})
    name = str(task.get("name") or "?")
    values = {**(defaults or {}), **task}
    if name == "rl":
        from pbtnas.tasks.rl.envs import env_words  # installed code, string work only

        env = str(facts.get("env") or values.get("env") or "?")
        pixels = " from pixels" if values.get("pixels") or facts.get("pixels") else ""
        return ReportHints(headline=f"rl on {env_words(env)}{pixels}", metrics_title="Returns and training metrics", episode_video=True)
    if name in ("classification", "gan") and values.get("dataset"):
        from pbtnas.tasks.data import data_headline

        return ReportHints(headline=data_headline(name, str(values["dataset"]), values.get("data_path")))
    return ReportHints()
