"""Rebuild a run's history from its directory: who lived when, with which fitness, who descends
from whom and which genes (layers) came from which parent.

Reads only what the run left behind (journal, manifest, best.json, summary.json, samples/); never
imports a task's optional dependencies unless the task can be built cheaply. A run that is still
going, stopped, never trained or written by an older pbtnas yields a history with ``status`` and
``notes`` saying so, and whatever could be read.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pbtnas.analysis.front import Front, read_front
from pbtnas.analysis.report.legacy import BUILTIN_NAMES, legacy_hints
from pbtnas.errors import PbtnasError
from pbtnas.rundir.records import ChildCreated, MemberCreated, MemberReplaced, MemberTrained, Record, RunStarted, StepDone
from pbtnas.rundir.report_hints import ReportHints
from pbtnas.rundir.runinfo import RUN_INFO_FILE, read_run_info, recorded_defaults, recorded_hints, recorded_space
from pbtnas.rundir.store import MANIFEST_VERSION, RunStore
from pbtnas.search.objectives import parse_objectives

#: a run whose journal moved less than this many seconds ago is taken to be still running
RUNNING_WINDOW_S = 600.0


@dataclass
class MemberRecord:
    """One individual (uid) of the run: its genome, where it came from, its fitness per step."""

    uid: int
    slot: int
    genome: dict
    born_step: int = -1  # -1: initial population; otherwise the step after which it was made
    parents: list = field(default_factory=list)
    primary: int | None = None
    donor: int | None = None
    genes_from_donor: list = field(default_factory=list)
    operator: str = "init"
    details: dict = field(default_factory=dict)
    replaced_uid: int | None = None
    seed: int | None = None
    fitness: dict = field(default_factory=dict)  # step -> fitness
    metrics: dict = field(default_factory=dict)  # step -> metrics dict
    objectives: dict = field(default_factory=dict)  # step -> {objective: value} (multi-objective runs)
    removed_step: int | None = None  # step after which it was replaced

    @property
    def is_child(self) -> bool:
        return self.born_step >= 0

    @property
    def last_fitness(self) -> float | None:
        return self.fitness[max(self.fitness)] if self.fitness else None


@dataclass
class RunHistory:
    """Everything the report shows, rebuilt from one run directory (see module docstring)."""

    run_dir: Path
    config: dict
    status: str  # finished | running | stopped | not-started
    status_text: str
    notes: list[str]
    members: dict[int, MemberRecord]
    steps_done: int
    steps_total: int | None
    summary: dict | None
    best: dict | None
    fitness_name: str
    final_metric_name: str
    gene_names: list[str]
    gene_options: dict[str, list]
    weight_genes: set[str]
    samples: list[Path]
    #: the task's facts from the ``run_started`` event (its ``describe()``), empty for older runs
    task_facts: dict = field(default_factory=dict)
    #: genes of kind "hyperparameter" (a learning rate ...), as the task's space says
    hyper_genes: set[str] = field(default_factory=set)
    #: the task's option defaults as ``run_info.json`` recorded them at start (empty for older runs)
    option_defaults: dict = field(default_factory=dict)
    #: the damaged journal lines reading skipped, as one sentence (None: none)
    journal_damage: str | None = None
    #: a multi-objective run's Pareto front and hypervolume (None for a single-objective run)
    front: Front | None = None
    #: what the task asked its report to show (``run_info.json``), or for an older run what
    #: :func:`~pbtnas.analysis.report.legacy.legacy_hints` works out from the task's name
    hints: ReportHints = field(default_factory=ReportHints)

    # -- derived views ------------------------------------------------------------------------
    @property
    def algorithm(self) -> str:
        return str(self.config.get("algorithm", "?"))

    @property
    def task_name(self) -> str:
        return str(self.config.get("task", {}).get("name", "?"))

    @property
    def headline(self) -> str:
        """What ran (see :func:`headline`)."""
        return headline(self.config, self.task_facts, self.option_defaults, self.hints)

    @property
    def metrics_title(self) -> str:
        """The title of the training-metrics section: the task's, or by the metrics reported."""
        if self.hints.metrics_title:
            return self.hints.metrics_title
        return "Returns and training metrics" if "train_return" in self.metric_names() else "Training metrics"

    def gene_kind(self, gene: str) -> str:
        """The gene's kind in words: layer (owns weights), hyperparameter, or weightless choice
        (an activation, a flag)."""
        if gene in self.weight_genes:
            return "layer"
        return "hyperparameter" if gene in self.hyper_genes else "weightless choice"

    @property
    def trained_steps(self) -> list[int]:
        return sorted({s for m in self.members.values() for s in m.fitness})

    @property
    def children(self) -> list[MemberRecord]:
        return sorted((m for m in self.members.values() if m.is_child), key=lambda m: m.uid)

    def population_at(self, step: int) -> list[MemberRecord]:
        """Members that trained at ``step``, by slot."""
        return sorted((m for m in self.members.values() if step in m.fitness), key=lambda m: m.slot)

    def best_per_step(self) -> list[tuple[int, float, float]]:
        """(step, best fitness at that step, best fitness so far) over finite fitnesses."""
        out, so_far = [], -math.inf
        for step in self.trained_steps:
            values = [m.fitness[step] for m in self.population_at(step) if _finite(m.fitness[step])]
            if not values:
                continue
            so_far = max(so_far, max(values))
            out.append((step, max(values), so_far))
        return out

    def option_counts(self) -> dict[str, list[dict]]:
        """gene -> per trained step, option -> how many members held it."""
        steps = self.trained_steps
        out: dict[str, list[dict]] = {}
        for gene in self.gene_names:
            per_step = []
            for step in steps:
                counts: dict = {}
                for m in self.population_at(step):
                    option = m.genome.get(gene)
                    counts[option] = counts.get(option, 0) + 1
                per_step.append(counts)
            out[gene] = per_step
        return out

    def best_genome(self) -> dict | None:
        if self.summary and self.summary.get("best_genome"):
            return self.summary["best_genome"]
        if self.best and self.best.get("genome"):
            return self.best["genome"]
        return None

    def evaluated_objectives(self) -> list[tuple[int, int, dict]]:
        """(uid, step, objective values) of every evaluation of a multi-objective run."""
        return [(m.uid, step, values) for m in sorted(self.members.values(), key=lambda m: m.uid) for step, values in sorted(m.objectives.items())]

    def ancestors(self, uid: int) -> list[list[int]]:
        """The parents' chain of ``uid`` from the journal, generation by generation."""
        from pbtnas.analysis.front import lineage

        return lineage(uid, {m.uid: list(m.parents) for m in self.members.values()})

    def metric_names(self) -> list[str]:
        names: list[str] = []
        for m in self.members.values():
            for metrics in m.metrics.values():
                for k, v in metrics.items():
                    if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in names:
                        names.append(k)
        return sorted(names, key=lambda n: "return" not in n)  # returns (RL) first, otherwise as reported


@dataclass
class WhatRan:
    """The task a run trained on, told against where its config came from: the preset whose
    description the config carries (the closest one when several share it), otherwise the
    task's defaults."""

    base: str  # "preset rl-cheetah" or "the rl task's defaults" or "" when nothing to compare with
    changes: list  # [(option, value in the run, value in the base)], in the task's option order

    @property
    def label(self) -> str:
        return "preset" if self.base.startswith("preset") else "default"

    def text(self, limit: int | None = None) -> str:
        """One line: ``preset rl-cheetah with env='hopper-hop' (preset: 'cheetah-run'), ...``."""
        if not self.changes:
            return f"{self.base}, unchanged" if self.base else ""
        shown = self.changes if limit is None else self.changes[:limit]
        more = "" if len(shown) == len(self.changes) else f", ... ({len(self.changes) - len(shown)} more)"
        return f"{self.base} with " + ", ".join(f"{k}={_short(v)} ({self.label}: {_short(b)})" for k, v, b in shown) + more


def headline(config: dict, task_facts: dict | None = None, defaults: dict | None = None, hints: ReportHints | None = None) -> str:
    """What ran, in a few words: the task's own headline (``hints``, as ``run_info.json``
    recorded them), followed for a user's task by its class and file (or module); never the
    preset's description, which a ``--set`` may have made untrue (a Pendulum run of preset
    rl-cheetah). Without ``hints`` (a run made before tasks gave them) the headline is worked out
    from the config, the task's ``describe()`` facts of the ``run_started`` event and the option
    defaults recorded in ``run_info.json`` (:func:`~pbtnas.analysis.report.legacy.legacy_hints`);
    no task is imported either way."""
    facts = task_facts or {}
    if hints is None:
        hints = legacy_hints(config, facts, defaults)
    name = str(dict(config.get("task") or {}).get("name") or "?")
    source = None
    if ":" in name and name not in BUILTIN_NAMES:
        where, _, cls = name.rpartition(":")
        kind = "file" if where.endswith(".py") else "module"
        source = f"task {cls or facts.get('task', '?')} from {kind} {where}"
    if hints.headline:
        return f"{hints.headline} ({source})" if source else hints.headline
    return source or name


def _short(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def what_ran(config: dict, defaults: dict | None = None) -> WhatRan:
    """The task options of ``config`` that differ from its preset (or the task's ``defaults``, as
    ``run_info.json`` recorded them: a viewer imports no task code)."""
    task = dict(config.get("task") or {})
    name = task.get("name")
    if not name:
        return WhatRan("", [])
    try:
        from pbtnas.tasks.presets import all_presets

        presets = all_presets()
    except Exception:  # noqa: BLE001 - a broken preset module must not break a report
        presets = {}
    same = [
        (pname, p)
        for pname, p in sorted(presets.items())
        if (p.get("task") or {}).get("name") == name and p.get("description") == config.get("description")
    ]
    if same:
        pname, preset = min(same, key=lambda item: len(_differences(task, {**(defaults or {}), **item[1]["task"]})))
        return WhatRan(f"preset {pname}", _differences(task, {**(defaults or {}), **preset["task"]}))
    if not defaults:  # an older run: nothing recorded to compare with, and no task is imported
        return WhatRan("", [])
    return WhatRan(f"the {name} task's defaults", _differences(task, {**defaults, "name": name}))


def _differences(task: dict, base: dict) -> list:
    out = []
    for key in sorted(task, key=lambda k: (k not in base, list(base).index(k) if k in base else 0)):
        value = task[key]
        if key == "name":
            continue
        before = base.get(key)
        if key in base and _same(value, before):
            continue
        out.append((key, value, before if key in base else "-"))
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) and not isinstance(b, bool):
        return float(a) == float(b)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return list(a) == list(b)
    return a == b


def sample_step(name: str) -> int | None:
    """The step (counted from 1, as the page counts) a sample grid follows, from its file name:
    ``after_step_NNNN.png`` (what pbtnas writes) holds the number itself; ``step_NNNN.png``, in
    runs made before, counts from 0 like the journal (``step_0000.png`` follows step 1). ``None``
    for another name."""
    stem = Path(name).stem
    for prefix, offset in (("after_step_", 0), ("step_", 1)):
        number = stem[len(prefix) :]
        if stem.startswith(prefix) and number.isdigit():
            return int(number) + offset
    return None


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def load_history(run_dir: str | Path, now: float | None = None) -> RunHistory:
    """Read a run directory into a :class:`RunHistory`. Raises :class:`PbtnasError` only when the
    folder holds no trace of a pbtnas run at all."""
    store = RunStore(run_dir)
    root = Path(run_dir)
    notes: list[str] = []
    if not root.is_dir():
        raise PbtnasError(f"{run_dir} does not exist")
    config: dict = {}
    if store.config_path.is_file():
        config = store.read_config() or {}
    manifest = _read_manifest(store, notes)
    events = store.records()
    damage = store.journal_damage()  # what reading skipped, said once by the caller
    started = next((e for e in events if isinstance(e, RunStarted)), None)
    if not config and not events and manifest is None:
        raise PbtnasError(f"{run_dir} is not a pbtnas run directory (no config.yaml, journal.jsonl or population.json)")
    if not config:
        config = (started.config if started else None) or {}
        notes.append("config.yaml is missing; the settings shown come from the journal")
    if not events:
        notes.append(
            "the run has no journal (journal.jsonl): history and lineage cannot be rebuilt; showing the last population from population.json"
        )
    elif started is None:
        notes.append("the journal has no run_started event: it is from an older pbtnas or was truncated")

    members = _members_from_events(events, notes)
    if not members and manifest:
        members = _members_from_manifest(manifest)
    summary = store.read_summary()
    best = store.read_best() or (manifest or {}).get("best")
    steps_done = _steps_done(events, manifest, summary)
    steps_total = config.get("steps") or (manifest or {}).get("steps")
    status, status_text = _status(store, events, summary, steps_done, steps_total, now)
    task_facts = (started.task if started else None) or {}
    fitness_name = (summary or {}).get("fitness_name") or task_facts.get("fitness") or "fitness"
    final_metric_name = (summary or {}).get("final_metric_name") or task_facts.get("final_metric") or "metric"
    info = read_run_info(root)
    hints = recorded_hints(info) or legacy_hints(config, task_facts, recorded_defaults(info))
    gene_names, gene_options, weight_genes, hyper_genes = _space_facts(info, config, members, notes)
    found = sorted((root / "samples").glob("*.png")) if (root / "samples").is_dir() else []
    # by the step they follow: a run resumed by a newer pbtnas may hold both naming schemes
    samples = sorted(found, key=lambda p: (sample_step(p.name) is None, sample_step(p.name) or 0, p.name))
    return RunHistory(
        root,
        config,
        status,
        status_text,
        notes,
        members,
        steps_done,
        steps_total,
        summary,
        best,
        fitness_name,
        final_metric_name,
        gene_names,
        gene_options,
        weight_genes,
        samples,
        dict(task_facts),
        hyper_genes,
        recorded_defaults(info),
        damage,
        _front(summary, manifest, config),
        hints,
    )


def _front(summary: dict | None, manifest: dict | None, config: dict) -> Front | None:
    """The front of a finished run from its summary; of a running or stopped one from the
    manifest's ``pareto`` (what the run has kept so far), with the config's objectives."""
    front = read_front(summary)
    if front is not None or not manifest or not isinstance(manifest.get("pareto"), dict):
        return front
    kept = manifest["pareto"]
    try:  # the run's own parser, as the run read its config
        objectives = parse_objectives(list(config.get("objectives") or []))
    except PbtnasError:  # a config the run could not have started with: no front to show
        return None
    return read_front(
        {
            "objectives": [o.to_dict() for o in objectives],
            "constraints": config.get("constraints") or [],
            "pareto_front": kept.get("entries") or [],
            "hypervolume": kept.get("hypervolume") or [],
            "hypervolume_reference": kept.get("reference") or {},
        }
    )


def _read_manifest(store: RunStore, notes: list[str]) -> dict | None:
    if not store.manifest_path.is_file():
        return None
    try:
        manifest = store.read_manifest()
    except PbtnasError as exc:
        notes.append(f"population.json could not be read: {exc}")
        return None
    if manifest.get("version", 0) < MANIFEST_VERSION:
        notes.append(f"population.json is of an older format (version {manifest.get('version', 0)})")
    return manifest


def _or(value: Any, default: Any) -> Any:
    """A record's field, or ``default`` where an older journal lacks it (read as None)."""
    return default if value is None else value


def _members_from_events(events: list[Record], notes: list[str]) -> dict[int, MemberRecord]:
    members: dict[int, MemberRecord] = {}
    missing = 0
    for e in events:
        if isinstance(e, MemberCreated) and e.uid is not None:
            members[e.uid] = MemberRecord(uid=e.uid, slot=_or(e.slot, e.uid), genome=e.genome or {}, seed=e.seed)
        elif isinstance(e, ChildCreated) and e.uid is not None:
            parents = list(e.parents or [])
            members[e.uid] = MemberRecord(
                uid=e.uid,
                slot=_or(e.slot, -1),
                genome=e.genome or {},
                born_step=_or(e.step, 0),
                parents=parents,
                # an older journal may lack primary and donor: they follow from the parents
                primary=e.primary if e.has("primary") else (parents[0] if parents else None),
                donor=e.donor if e.has("donor") else (parents[1] if len(parents) > 1 else None),
                genes_from_donor=list(e.genes_from_donor or []),
                operator=_or(e.operator, "?"),
                details={k: v for k, v in e.to_json().items() if k not in _CHILD_KEYS},
                replaced_uid=e.replaced_uid,
                seed=e.seed,
            )
            if not e.genome:
                missing += 1
        elif isinstance(e, MemberTrained) and e.uid is not None:
            if e.uid not in members:
                members[e.uid] = MemberRecord(uid=e.uid, slot=_or(e.slot, -1), genome={})
                missing += 1
            step = _or(e.step, 0)
            members[e.uid].fitness[step] = float(e.fitness) if e.fitness is not None else -math.inf
            members[e.uid].metrics[step] = e.metrics or {}
            values = e.get("objectives")
            if isinstance(values, dict) and values:
                members[e.uid].objectives[step] = values
        elif isinstance(e, MemberReplaced):
            old = members.get(e.old_uid)
            if old is not None:
                old.removed_step = e.step
    if missing:
        notes.append(
            f"{missing} journal record(s) lack fields this version writes (genome or creation record): "
            "the run is from an older pbtnas; some genomes or parents are unknown"
        )
    return members


_CHILD_KEYS = {
    "event",
    "time",
    "step",
    "slot",
    "uid",
    "parents",
    "primary",
    "donor",
    "genes_from_donor",
    "operator",
    "seed",
    "genome",
    "replaced_uid",
}


def _members_from_manifest(manifest: dict) -> dict[int, MemberRecord]:
    out = {}
    step = manifest.get("step_done", -1)
    for m in manifest.get("members", []):
        record = MemberRecord(
            uid=m["uid"], slot=m.get("slot", 0), genome=m.get("genome") or {}, born_step=m.get("born_step", -1), parents=list(m.get("parents") or [])
        )
        if m.get("fitness") is not None and step >= 0:
            record.fitness[step] = float(m["fitness"])
        out[record.uid] = record
    return out


def _steps_done(events: list[Record], manifest: dict | None, summary: dict | None) -> int:
    if summary and summary.get("steps_done") is not None:
        return int(summary["steps_done"])
    if manifest is not None:
        return int(manifest.get("step_done", -1)) + 1
    done = [_or(e.step, -1) for e in events if isinstance(e, StepDone)]
    return max(done) + 1 if done else 0


def _status(
    store: RunStore, events: list[Record], summary: dict | None, steps_done: int, steps_total: int | None, now: float | None
) -> tuple[str, str]:
    total = f"/{steps_total}" if steps_total else ""
    if summary and summary.get("finished"):
        return "finished", f"finished: {steps_done}{total} steps"
    now = time.time() if now is None else now
    last = max((e.time or 0 for e in events), default=0) or (store.journal_path.stat().st_mtime if store.journal_path.is_file() else 0)
    age = now - last if last else math.inf
    if steps_done <= 0 and not any(isinstance(e, MemberTrained) for e in events):
        base = "not-started", f"no step has finished yet (0{total} steps)"
    elif age <= RUNNING_WINDOW_S:
        base = "running", f"still running, or stopped moments ago: {steps_done}{total} steps done"
    else:
        base = (
            "stopped",
            (f"not finished: {steps_done}{total} steps done and no activity for {_ago(age)}; continue it with 'pbtnas resume {store.root}'"),
        )
    if base[0] == "not-started" and age <= RUNNING_WINDOW_S:
        return "running", "still running: " + base[1]
    return base


def _ago(seconds: float) -> str:
    if seconds == math.inf:
        return "an unknown time"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


def _space_facts(info: dict | None, config: dict, members: dict[int, MemberRecord], notes: list[str]) -> tuple[list, dict, set, set]:
    """Gene order, options, weight-owning genes and hyperparameter genes: from the search space
    ``run_info.json`` recorded at start (the task itself is never imported: a run directory is
    data), otherwise as observed in the genomes (options in order of first appearance; every gene
    then counts as owning weights, none as a hyperparameter)."""
    space = recorded_space(info)
    if space is not None:
        return space.names, {g.name: list(g.options) for g in space.genes}, set(space.weight_genes), set(space.hyperparameters)
    if config.get("task"):
        notes.append(f"the run has no readable {RUN_INFO_FILE} (made by an older pbtnas?): gene options are those seen in the run")
    names: list[str] = []
    options: dict[str, list] = {}
    for m in sorted(members.values(), key=lambda m: m.uid):
        for gene, option in m.genome.items():
            if gene not in options:
                names.append(gene)
                options[gene] = []
            if option not in options[gene]:
                options[gene].append(option)
    return names, options, set(names), set()
