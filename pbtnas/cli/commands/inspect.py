"""``pbtnas status``, ``pbtnas space`` and ``pbtnas presets``: read-only views."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pbtnas.errors import PbtnasError


def register(sub) -> None:
    s = sub.add_parser("status", help="show a run's population: member, genome, fitness, parents")
    s.add_argument("run_dir")
    s.add_argument("--json", action="store_true", help="print the manifest as JSON")
    s.set_defaults(handler=status_command)

    sp = sub.add_parser("space", help="list the genes and options of a preset's search space")
    sp.add_argument("source", metavar="PRESET|CONFIG.yaml")
    sp.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(handler=space_command)

    pr = sub.add_parser("presets", help="list the built-in presets")
    pr.set_defaults(handler=presets_command)


def status_command(args) -> int:
    from pbtnas.cli.commands._checks import run_config
    from pbtnas.rundir.checks import check_genomes
    from pbtnas.rundir.store import RunStore

    store = RunStore(args.run_dir)
    runs = Path(args.run_dir) / "runs"
    if not store.manifest_path.exists() and runs.is_dir():
        return _compare_status(Path(args.run_dir), args.json)
    raw = store.read_manifest()  # one error naming population.json if it is missing or damaged
    run_config(store)  # one error naming config.yaml if it is not a valid run config
    if args.json:
        print(json.dumps(raw, indent=2))
        return 0
    manifest = store.read_manifest_record()
    config = store.read_config()
    summary = store.read_summary()  # one error naming summary.json if it is damaged
    from pbtnas.analysis.report.history import what_ran

    # finished is what summary.json says, as report, export, soup and resume decide it
    finished = store.finished()
    state = _state(store, finished, f"continue with: pbtnas resume {args.run_dir}")
    if manifest.finished and not finished:
        state += " (summary.json is missing: resume evaluates the final network again and writes it)"
    from pbtnas.analysis.report.history import headline
    from pbtnas.rundir.runinfo import read_run_info, recorded_defaults, recorded_hints, recorded_space

    # what only the task knows comes from run_info.json, recorded at start: status runs no task code
    info = read_run_info(args.run_dir)
    facts = (info or {}).get("describe") if isinstance((info or {}).get("describe"), dict) else None
    defaults = recorded_defaults(info)
    print(
        f"run {args.run_dir}: {config.get('algorithm')} on {headline(config, facts, defaults, recorded_hints(info))}, "
        f"step {manifest.step_done + 1}/{manifest.steps} done, {state}"
    )
    ran = what_ran(config, defaults)
    if ran.base:
        print(f"what ran: {ran.text()}")
    space = recorded_space(info)
    if space is not None:
        check_genomes(raw, space, store.manifest_path)
    rows = [("slot", "member", "born", "parents", "fitness", "genome")]
    for m in manifest.members:
        fitness = "-" if m.fitness is None else f"{m.fitness:.4f}"
        parents = "-" if not m.parents else "+".join(str(p) for p in m.parents)
        genome = genome_text(m.genome)  # the manifest holds gene -> option: no task needed to read it
        born = "init" if m.born_step < 0 else str(m.born_step + 1)
        rows.append((str(m.slot), str(m.uid), born, parents, fitness, genome))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    best = manifest.best
    if best:
        print(f"best so far: member {best.uid} fitness {best.fitness:.4f} at step {best.step + 1}")
    if summary:
        print(f"final {summary.get('final_metric_name', 'metric')}: {summary.get('final_metric')}")
        _print_front(summary)
    return 0


def _print_front(summary: dict) -> None:
    """The Pareto front of a multi-objective run (nothing for a single-objective one): one row per
    member with its objectives during the search and re-scored at the end."""
    from pbtnas.analysis.front import read_front

    front = read_front(summary)
    if front is None:
        return
    hv = front.final_hypervolume()
    constraints = f", constraints {', '.join(front.constraints)}" if front.constraints else ""
    print(
        f"Pareto front: {len(front.members)} member(s) over {', '.join(o.name + ':' + o.direction for o in front.objectives)}{constraints}"
        + ("" if hv is None else f"; hypervolume {hv:.6g}")
    )
    names = front.names
    rows = [("member", "step", *names, *(f"final {n}" for n in names), "feasible")]
    for m in front.members:
        seen, final = m.get("objectives") or {}, m.get("final_objectives") or {}
        step = m.get("step")
        rows.append(
            (
                str(m.get("uid")),
                "-" if step is None else str(int(step) + 1),
                *(_value_text(seen.get(n)) for n in names),
                *(_value_text(final.get(n)) for n in names),
                "yes" if m.get("feasible", True) else "no",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


def _value_text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "-"
    return f"{value:.4f}" if isinstance(value, float) and abs(value) < 1e4 and value != int(value) else f"{value:g}"


def genome_text(genome: dict) -> str:
    """A genome as ``gene=option``, compact: genes sharing a prefix (the text before the last dot)
    in a row are written once under it, e.g. ``cell0[op0=conv3 op1=skip] lr=0.001``."""
    parts: list[tuple[str, list[str]]] = []
    for gene, option in genome.items():
        group, dot, name = str(gene).rpartition(".")
        item = f"{name if dot else gene}={_option_text(option)}"
        if dot and parts and parts[-1][0] == group:
            parts[-1][1].append(item)
        else:
            parts.append((group if dot else "", [item]))
    return " ".join(f"{group}[{' '.join(items)}]" if group else items[0] for group, items in parts)


def _option_text(option: Any) -> str:
    if isinstance(option, float):
        return f"{option:g}"
    if isinstance(option, (list, tuple)):
        return "(" + ",".join(_option_text(o) for o in option) + ")"
    return str(option)


def _state(store, finished: bool, how_to_continue: str = "") -> str:
    """finished / running (who) / stopped (and ``how_to_continue``), as ``pbtnas status`` says it."""
    writer = None if finished else store.writer()
    if finished:
        return "finished"
    if writer is not None:
        who = f"PID {writer['pid']} on {writer['host']}, since {writer['since']}" if writer.get("pid") else "by a process starting up"
        return f"running ({who})"
    return "stopped (no process is writing it)" + (f"; {how_to_continue}" if how_to_continue else "")


def _compare_status(folder: Path, as_json: bool) -> int:
    """``pbtnas status`` of a ``pbtnas compare`` folder: one line per run (state, steps, best
    fitness, final metric), from each run's manifest and summary; damaged runs are named, not fatal."""
    from pbtnas.rundir.store import RunStore

    rows: list[dict[str, Any]] = []
    for run_dir in sorted(p for p in (folder / "runs").iterdir() if p.is_dir()):
        store = RunStore(run_dir)
        row: dict[str, Any] = {"run": run_dir.name, "state": "not started", "steps": "-", "best_fitness": None, "final_metric": None}
        try:
            if store.manifest_path.exists():
                manifest = store.read_manifest_record()
                summary = store.read_summary() or {}
                row.update(state=_state(store, store.finished()), steps=f"{manifest.step_done + 1}/{manifest.steps}")
                row["best_fitness"] = manifest.best.fitness if manifest.best else None
                row["final_metric"] = summary.get("final_metric")
        except PbtnasError as exc:
            row["state"] = f"unreadable ({exc})"
        rows.append(row)
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    done = sum(1 for r in rows if r["state"] == "finished")
    print(f"comparison {folder}: {done} of {len(rows)} runs finished")
    table: list[tuple[str, ...]] = [("run", "state", "steps", "best fitness", "final metric")]
    for r in rows:
        best = "-" if r["best_fitness"] is None else f"{r['best_fitness']:.4f}"
        final = "-" if r["final_metric"] is None else f"{r['final_metric']:.4f}"
        table.append((r["run"], r["state"], r["steps"], best, final))
    widths = [max(len(t[i]) for t in table) for i in range(len(table[0]))]
    for line in table:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip())
    if (folder / "table.md").exists():
        print(f"tables: {folder / 'table.md'} (rerun pbtnas compare with the same arguments to continue or refresh them)")
    return 0


def space_command(args) -> int:
    from pbtnas.config import apply_overrides, load_config_source
    from pbtnas.engine.memory import check_task_memory
    from pbtnas.tasks import build_task
    from pbtnas.tasks.base import options_doc

    data = apply_overrides(load_config_source(args.source), args.overrides)
    check_task_memory(data["task"])  # building the task may be the allocation (task.layers=1e8)
    task = build_task(data["task"])
    rows = task.space.describe()
    if args.json:
        print(json.dumps({"space": task.space.name, "genes": rows}, indent=2))
        return 0
    print(f"search space {task.space.name}: {len(rows)} genes, {len(task.space.weight_genes)} own weights")
    width = max(len(r["gene"]) for r in rows)
    for r in rows:
        kind = "weights" if r["owns_weights"] else ("hyperparameter" if r.get("kind") == "hyperparameter" else "no weights")
        print(f"  {r['gene'].ljust(width)}  [{kind}]  {', '.join(str(o) for o in r['options'])}")
    print("task options:")
    for opt in options_doc(type(task.options)):
        allowed = f" ({opt['allowed']})" if opt["allowed"] else ""
        print(f"  task.{opt['name']} = {getattr(task.options, opt['name'])!r}  # {opt['doc']}{allowed}")
    return 0


def presets_command(args) -> int:
    from pbtnas.tasks.presets import all_presets

    for name, config in sorted(all_presets().items()):
        task = config.get("task", {})
        print(
            f"{name:28s} task={task.get('name')}  population={config.get('population', 8)}  "
            f"steps={config.get('steps', 10)}  {config.get('description', '')}"
        )
    return 0
