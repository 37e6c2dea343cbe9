"""Run configuration: one dataclass whose every field documents itself, loaded from a preset or
a YAML file and overridden from the command line (``--set key=value``, ``--set task.key=value``).
"""

from __future__ import annotations

import codecs
import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from pbtnas.errors import ConfigError
from pbtnas.options import doc, parse_options
from pbtnas.search.algorithms import ALGORITHMS  # the registry: name -> description, operator, schedule
from pbtnas.search.constants import SP_BUFFERS
from pbtnas.search.objectives import check_objectives
from pbtnas.search.schedules import MODES, schedule_of_algorithm

BACKENDS = ("inprocess", "local", "ray")
SELECTIONS = ("best-ever", "best-last", "top-k-reevaluated")


@dataclass
class RunConfig:
    """Everything a run needs besides the task's own options (in ``task``)."""

    description: str = doc("free text describing the run or preset", "")
    task: dict = doc("the task's section: 'name' plus that task's options", default_factory=dict)
    algorithm: str = doc("the search algorithm or ablation", "pbtnas", choices=ALGORITHMS)
    population: int = doc("population size N", 8, ge=4)
    steps: int = doc("number of steps; every member trains one step between exploitations", 10, ge=1)
    seed: int = doc("master seed; every random stream of the run derives from it", 0, ge=0, lt=2**32)
    tau: float = doc("fraction of the population used as parents and replaced", 0.25, gt=0, lt=1)
    p_donor: float = doc("probability that a gene (layer) is taken from the donor parent", 0.25, ge=0, le=1)
    sp_lambda: float = doc("shrink factor of transplanted weights", 0.4, ge=0)
    sp_gamma: float = doc("perturb factor (weight of a fresh initialisation)", 0.1, ge=0)
    sp_buffers: str = doc(
        "shrink-perturb in transplanted layers: 'all' floating tensors (paper) or 'parameters' "
        "only, copying buffers such as BatchNorm statistics from the donor",
        "all",
        choices=SP_BUFFERS,
    )
    donor_moments: bool = doc("take Adam moments of transplanted layers from the donor instead of resetting them", False)
    exploit_every_first_half: int = doc("in the first half of the run exploit only every k-th step (paper: 1 or 2)", 1, ge=1)
    final_selection: str = doc(
        "'best-ever', 'best-last', 'top-k-reevaluated' (the reevaluate_top_k best members "
        "re-scored on a split no fitness evaluation saw), or '' for the task's default",
        "",
        choices=("", *SELECTIONS),
    )
    reevaluate_top_k: int = doc("with final_selection top-k-reevaluated: how many of the best members to re-score", 3, ge=1)
    backend: str = doc("where members train: inprocess, local (process pool) or ray", "local", choices=BACKENDS)
    workers: int = doc(
        "parallel workers of the local backend (0 = one per core); with Ray: an upper bound on "
        "members training at once (0 = as many as resources allow)",
        0,
        ge=0,
    )
    threads_per_member: int = doc("torch intra-op threads per training member", 1, ge=1)
    max_retries: int = doc("retries of a member step whose worker died before it is marked failed", 2, ge=0)
    keep_checkpoints: int = doc("finished steps whose population checkpoints are kept on disk", 2, ge=1)
    ray_address: str = doc("Ray cluster address ('' starts a local Ray, 'auto' joins a running one)", "")
    cpus_per_member: float = doc("Ray: CPUs reserved per training member (fractions allowed)", 1.0, ge=0)
    gpus_per_member: float = doc("Ray: GPUs reserved per training member (fractions allowed)", 0.0, ge=0)
    storage: str = doc("Ray: shared folder or fsspec URL for member states ('' = Ray object store)", "")
    mode: str = doc("'sync' (generational, the paper's) or 'async' (no barrier)", "sync", choices=MODES)
    bohb_eta: int = doc("algorithm bohb: Hyperband's reduction factor (a 1/eta share of trials goes on at each rung)", 3)
    nsga2_trial_steps: int = doc(
        "algorithm nsga2: steps each trial trains from scratch (0 = steps // 4, at least 1); the run trains "
        "population x steps / nsga2_trial_steps trials, i.e. about 4 NSGA-II generations of population trials by default",
        0,
        ge=0,
    )
    lookahead: bool = doc(
        "sync mode: steps go out longest expected first, and while the slowest members finish a "
        "step idle workers start the next step of members sure to survive (same results, less idle time)",
        True,
    )
    loggers: list[str] = doc("extra loggers: tensorboard, wandb, mlflow", default_factory=list)
    objectives: list[str] = doc(
        "what selection optimises, each NAME[:max|:min] (default max): fitness, params, flops, latency_ms "
        "or a metric the task's evaluate returns; more than one gives a Pareto front (docs/multi-objective.md)",
        default_factory=lambda: ["fitness"],
    )
    constraints: list[str] = doc("bounds members must keep, each NAME<=NUMBER (or >=, <, >), e.g. params<=50000", default_factory=list)

    def validate(self) -> "RunConfig":
        """The checks no one field's declaration can make: of fields together, of the task
        section and its device. Each field's own kind and range are checked by
        :func:`config_from_dict` (:func:`pbtnas.options.parse_options`)."""
        if not isinstance(self.task, dict) or not self.task.get("name"):
            raise ConfigError("config needs a 'task' section with a 'name' (or 'task: NAME')")
        device = self.task.get("device")
        if device is not None:
            try:
                import torch

                torch.device(str(device))
            except (RuntimeError, ValueError):
                raise ConfigError(f"task.device {device!r} is not a torch device (cpu, cuda, cuda:1, mps, ...)") from None
        n_children = max(1, int(self.population * self.tau))
        n_parents = max(2, int(self.population * self.tau))
        if n_parents > self.population - n_children:
            raise ConfigError(
                f"tau={self.tau} with population {self.population} replaces {n_children} members and "
                f"needs {n_parents} parents among the {self.population - n_children} survivors: lower tau"
            )
        own = schedule_of_algorithm(self.algorithm)
        if own is not None and self.mode != "sync":
            # the algorithm's own schedule runs whatever the mode (pbtnas.search.schedules)
            raise ConfigError(f"algorithm {self.algorithm} schedules its trials {own.how}: leave mode at 'sync'")
        check_objectives(self.objectives, self.constraints, self.final_selection)
        if self.nsga2_trial_steps > self.steps:
            raise ConfigError(f"nsga2_trial_steps must lie in [0, steps={self.steps}] (0: steps // 4), got {self.nsga2_trial_steps}")
        if own is not None and own.hyperband:
            from pbtnas.search.hyperband import check_budget

            check_budget(self.population, self.steps, self.bohb_eta)
        return self

    @property
    def resolved_workers(self) -> int:
        return self.workers or os.cpu_count() or 1

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def with_task_section(data: dict) -> dict:
    """``task: NAME`` is short for ``task: {name: NAME}``; any other non-mapping is refused here,
    with the one message every command gives."""
    task = data.get("task")
    if isinstance(task, str) and task:
        return {**data, "task": {"name": task}}
    if "task" in data and not isinstance(task, dict):
        raise ConfigError(f"config needs a 'task' section with a 'name' (or 'task: NAME'), got task: {task!r}")
    return data


def config_from_dict(data: dict, where: str = "config") -> RunConfig:
    """Build and validate a :class:`RunConfig`, naming unknown keys and wrongly typed values."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping of keys to values")
    return parse_options(RunConfig, with_task_section(data), where="config").validate()


def parse_value(text: str) -> Any:
    """Interpret a ``--set`` value the way YAML would (numbers, booleans, lists, strings)."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(data: dict, assignments: list[str]) -> dict:
    """Apply ``key=value`` strings; dotted keys reach into sections (``task.width=16``)."""
    for item in assignments:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        target = data
        parts = key.split(".")
        for part in parts[:-1]:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise ConfigError(f"--set {key}: {part!r} is not a section")
        target[parts[-1]] = parse_value(raw)
    return data


def is_task_reference(source: str) -> bool:
    """Whether ``source`` names a task class (``file.py:Class`` or ``package.module:Class``)
    rather than a preset or a config file."""
    where, colon, attr = source.rpartition(":")
    if not colon or not where or not all(part.isidentifier() for part in attr.split(".")):
        return False
    return where.endswith(".py") or all(part.isidentifier() for part in where.split("."))


def read_yaml(stream, where: str) -> Any:
    """YAML as ``yaml.safe_load`` reads it, except that a key given twice in one mapping is refused
    (YAML would silently keep the last one), and any error is one line naming where."""
    import yaml

    class _Strict(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            seen: dict = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise ConfigError(f"{where}: key {key!r} is given twice (lines {seen[key] + 1} and {key_node.start_mark.line + 1})")
                seen[key] = key_node.start_mark.line
            return super().construct_mapping(node, deep=deep)

    try:
        return yaml.load(stream, Loader=_Strict)  # a SafeLoader: plain data only
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise ConfigError(f"{where} is not valid YAML{at}: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where} is not valid YAML: {' '.join(str(exc).split())}") from None


#: the largest config file read: a config is a few lines of YAML, and a file of gigabytes (or
#: /dev/zero) must not be read into memory to find that out
MAX_CONFIG_BYTES = 1 << 20
#: byte-order marks of text that is not UTF-8, longest first (UTF-32's starts like UTF-16's)
_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


def read_config_text(path: str) -> str:
    """The text of a config file, or one :class:`ConfigError` saying why it is not a YAML text
    file: missing, a folder (a run directory: how to resume it), too large, UTF-16/32, binary or
    not UTF-8. Read at most one byte past the limit, so a pipe or a device (``<(...)``, /dev/zero)
    is read safely. A UTF-8 byte-order mark is allowed (Windows editors write it)."""
    where = f"config file {path!r}"
    if not os.path.exists(path):
        raise ConfigError(f"{where} does not exist")
    if os.path.isdir(path):
        is_run = os.path.isfile(os.path.join(path, "config.yaml"))
        hint = f"; it is a run directory: continue it with  pbtnas resume {path}" if is_run else ""
        raise ConfigError(f"{where} is a folder, not a YAML file{hint}")
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{where} cannot be read: {exc.strerror or exc}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{where} is larger than {MAX_CONFIG_BYTES // 1024} KiB: a config is a few lines of YAML; is it the right file?")
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            raise ConfigError(f"{where} is {encoding} text: save it as UTF-8")
    if b"\0" in raw:
        raise ConfigError(f"{where} is not a text file (it holds NUL bytes: binary data, or UTF-16/32 text): give a YAML file in UTF-8")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{where} is not UTF-8 text (byte {exc.start} is 0x{raw[exc.start]:02x}): save it as UTF-8") from None


def load_config_source(source: str) -> dict:
    """A preset name, the path of a YAML file, or a task (``file.py:Class``,
    ``package.module:Class``, a plugin's name) -> config dict (not yet validated). A task alone
    runs with every other key at its default."""
    from pbtnas.tasks import plugin_tasks
    from pbtnas.tasks.presets import all_presets, get_preset

    if is_task_reference(source):
        return {"task": {"name": source}}
    if source.endswith((".yaml", ".yml", ".json")) or os.path.sep in source:
        data = read_yaml(read_config_text(source), f"config file {source!r}")
        if not isinstance(data, dict):
            raise ConfigError(f"config file {source!r} must hold a mapping")
        data = with_task_section(data)
        if "preset" in data:  # a file may start from a preset and override some keys
            base = get_preset(str(data.pop("preset")))
            task = {**base.get("task", {}), **data.pop("task", {})}
            base.update(data)
            base["task"] = task
            data = base
        return data
    if source not in all_presets():
        if source in plugin_tasks():
            return {"task": {"name": source}}
        raise ConfigError(
            f"unknown preset {source!r}; known presets: {', '.join(sorted(all_presets()))} "
            "(or a config file ending in .yaml, or a task as file.py:Class or package.module:Class)"
        )
    return get_preset(source)
