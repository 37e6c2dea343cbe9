"""The report's HTML page: a self-contained folder (``index.html`` plus PNGs) that any browser
opens from disk. All text from the run is escaped."""

from __future__ import annotations

import html
import math
import time
from pathlib import Path

from pbtnas.analysis.report.history import RunHistory, _finite, sample_step, what_ran
from pbtnas.search.algorithms import ALGORITHMS
from pbtnas.search.schedules import schedule_of_config

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.5em} h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0} td,th{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f4f6f8} img{max-width:100%;border:1px solid #eee;margin:.3em 0}
.status{padding:.6em 1em;border-radius:6px;margin:.8em 0;font-weight:600}
.finished{background:#e3f4e6;color:#1e6b2e} .running{background:#fff5d6;color:#7a5b00}
.stopped,.not-started{background:#fde4e1;color:#8a2315}
.notes li{color:#8a4b00} .muted{color:#777} .samples img{width:240px;image-rendering:pixelated}
code{background:#f4f4f4;padding:0 .2em}
"""


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value, digits: int = 4) -> str:
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}" if math.isfinite(value) else str(value)
    return str(value)


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figure(images: dict[str, str | None], key: str, alt: str, missing: str) -> str:
    name = images.get(key)
    if not name:
        return f'<p class="muted">{_e(missing)}</p>'
    return f'<img src="{_e(name)}" alt="{_e(alt)}">'


def render(h: RunHistory, images: dict[str, str | None], samples: list[str], version: str, video_caption: str = "") -> str:
    """The whole page as a string."""
    parts = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>pbtnas report: {_e(h.run_dir.name)}"
        f"</title><style>{CSS}</style></head><body>",
        f"<h1>pbtnas report: {_e(h.run_dir.name)}</h1>",
        f"<p id='what'>{_e(h.headline)}, {_e(h.algorithm)}</p>",
        f'<div class="status {_e(h.status)}" id="status">{_e(h.status_text)}</div>',
    ]
    if h.notes:
        parts.append("<ul class='notes' id='notes'>" + "".join(f"<li>{_e(n)}</li>" for n in h.notes) + "</ul>")
    parts.append(_overview(h))
    parts.append("<h2>Fitness over time</h2>")
    parts.append(_figure(images, "fitness", "fitness per member and best of the population", "no member has finished a step yet"))
    parts.append("<h2>Best network</h2>")
    parts.append(_figure(images, "architecture", "architecture of the best network", "no best network yet"))
    parts.append(_best_table(h))
    parts.append(_front_section(h, images))
    parts.append(_soup_section(h))
    parts.append(_bohb_section(h))
    parts.append("<h2>Lineage</h2>")
    parts.append(_figure(images, "lineage", "lineage tree", "no member has trained yet"))
    parts.append(
        _figure(
            images,
            "inheritance",
            "genes each child took from each parent",
            "no child has been made yet" if _makes_children(h.algorithm) else f"{h.algorithm} makes no children",
        )
    )
    parts.append(_children_table(h))
    parts.append("<h2>Option frequencies per gene</h2>")
    parts.append(_figure(images, "options", "share of each option per gene over time", "nothing to count yet"))
    parts.append(f"<h2>{_e(h.metrics_title)}</h2>")
    if images.get("returns"):
        parts.append(_figure(images, "returns", "evaluation return against environment frames and every evaluation episode", ""))
    parts.append(_figure(images, "metrics", "training metrics per step", "the task reported no training metrics"))
    if images.get("episode") or video_caption:
        parts.append("<h2>The agent at work</h2>")
        if images.get("episode"):
            parts.append(
                f"<figure id='episode'><img src='{_e(images['episode'])}' alt='evaluation episode of the "
                f"delivered agent'><figcaption class='muted'>{_e(video_caption)}</figcaption></figure>"
            )
        else:
            parts.append(f"<p class='muted' id='episode'>{_e(video_caption)}</p>")
    if samples:
        parts.append("<h2>Samples of the best member</h2><div class='samples'>")
        for name in samples:
            step = sample_step(name)
            label = Path(name).stem if step is None else f"after step {step}"
            parts.append(
                f"<figure style='display:inline-block;margin:.3em'><img src='{_e(name)}' alt='{_e(label)}'>"
                f"<figcaption class='muted'>{_e(label)}</figcaption></figure>"
            )
        parts.append("</div>")
    parts.append(_population_table(h))
    parts.append(f"<p class='muted'>written by pbtnas {_e(version)} on {_e(time.strftime('%Y-%m-%d %H:%M:%S'))}</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _overview(h: RunHistory) -> str:
    c = h.config
    ran = what_ran(c, h.option_defaults)
    rows = [["task", h.headline]]
    if ran.changes:
        rows.append([f"what ran: task options changed from {ran.base}", "; ".join(f"{k} = {v!r} ({ran.label}: {b!r})" for k, v, b in ran.changes)])
    elif ran.base:
        rows.append(["what ran", f"task options as in {ran.base}"])
    rows += [
        ["algorithm", h.algorithm],
        ["population", c.get("population", "?")],
        ["seed", c.get("seed", "?")],
        ["steps done", f"{h.steps_done} of {h.steps_total or '?'}"],
        ["individuals (incl. children)", str(len(h.members))],
        ["children made", str(len(h.children))],
    ]
    s = h.summary or {}
    if s:
        rows += [
            ["final network", f"member {s.get('best_uid')} ({s.get('final_selection')})"],
            [f"best {h.fitness_name} (search)", _fmt(s.get("best_fitness"))],
        ]
        for k, v in (s.get("final_metrics") or {}).items():
            rows.append([f"final {k}", _fmt(v)])
        rows.append(["wall time", f"{_fmt(s.get('wall_time_s'), 1)} s"])
        for d in s.get("earlier_deliveries") or []:  # a finished run given more steps delivered before
            rows.append(
                [
                    f"earlier delivery (after {d.get('steps_done')} steps)",
                    f"member {d.get('best_uid')} ({d.get('final_selection')}): {h.fitness_name} {_fmt(d.get('best_fitness'))}, "
                    f"final {d.get('final_metric_name')} {_fmt(d.get('final_metric'))}; kept in {d.get('summary')}",
                ]
            )
    elif h.best:
        rows.append(
            [f"best {h.fitness_name} so far", f"{_fmt(h.best.get('fitness'))} (member {h.best.get('uid')}, step {(h.best.get('step') or 0) + 1})"]
        )
    return "<h2>Overview</h2>" + _table(["", ""], rows)


def _best_table(h: RunHistory) -> str:
    genome = h.best_genome()
    if not genome:
        return ""
    return _table(["gene", "option", "kind"], [[g, o, h.gene_kind(g)] for g, o in genome.items()])


def _value(value) -> str:
    """An objective's value: counts (params, flops) as integers, other numbers as :func:`_fmt`."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and abs(value) >= 10:
        return f"{value:.0f}"
    return _fmt(value)


def _front_section(h: RunHistory, images: dict[str, str | None]) -> str:
    """A multi-objective run's Pareto front: the figure against every evaluated member, the
    hypervolume per step and one row per front member with its lineage (nothing for one objective)."""
    front = h.front
    if front is None:
        return ""
    names = front.names
    hv = front.final_hypervolume()
    text = (
        f"{len(front.members)} member(s) on the front over {', '.join(front.axis_label(n) for n in names)}"
        + (f"; constraints: {', '.join(front.constraints)}" if front.constraints else "")
        + ("" if hv is None else f"; hypervolume {_fmt(hv)}")
        + ". The front holds every non-dominated member seen during the run; 'final' values are re-scored at the end. "
        'Export one with pbtnas export RUN_DIR --member UID, or the best under a budget with --pick "params<=50000".'
    )
    rows = []
    for m in front.members:
        seen, final = m.get("objectives") or {}, m.get("final_objectives") or {}
        uid = m.get("uid")
        chain = h.ancestors(uid) if isinstance(uid, int) else []
        step = m.get("step")
        rows.append(
            [
                uid,
                "-" if step is None else int(step) + 1,
                *[_value(seen.get(n)) for n in names],
                *[_value(final.get(n)) for n in names],
                "yes" if m.get("feasible", True) else "no",
                " <- ".join("+".join(str(u) for u in generation) for generation in chain) or "initial population",
            ]
        )
    header = ["member", "step", *names, *[f"final {n}" for n in names], "feasible", "lineage (parents <- grandparents <- ...)"]
    return (
        f"<h2>Pareto front</h2><p id='front'>{_e(text)}</p>"
        + _figure(images, "front", "Pareto front against every evaluated member", "no member has been evaluated yet")
        + _figure(images, "hypervolume", "hypervolume per step", "no step has finished yet")
        + _table(header, rows)
    )


def _soup_section(h: RunHistory) -> str:
    """The model soups made by ``pbtnas soup``, next to the delivered network (nothing if none)."""
    from pbtnas.analysis.soup import read_soups

    soups = read_soups(h.run_dir)
    if not soups:
        return ""
    if soups.get("note"):
        return f"<h2>Model soups</h2><p id='soups'>{_e(soups['note'])}</p>"
    metrics = sorted(soups["delivered"].get("final_metrics", {}))
    rows = [
        [
            "delivered network",
            str(soups["delivered_uid"]),
            _fmt(soups["delivered"]["fitness"]),
            *[_fmt(soups["delivered"]["final_metrics"].get(m)) for m in metrics],
        ]
    ]
    for name in ("uniform", "greedy"):
        soup = soups.get(name) or {}
        if soup:
            rows.append(
                [f"{name} soup", ", ".join(map(str, soup["members"])), _fmt(soup["fitness"]), *[_fmt(soup["final_metrics"].get(m)) for m in metrics]]
            )
    return (
        "<h2>Model soups</h2><p id='soups'>Weight averages of the members that share the delivered "
        "architecture (uniform: all of them; greedy: added best first while the fitness improves). "
        "Export one with <code>pbtnas export RUN_DIR --which soup-greedy</code>.</p>" + _table(["network", "members", "fitness", *metrics], rows)
    )


def _bohb_section(h: RunHistory) -> str:
    """Trials and Hyperband rungs of a run whose schedule has them (bohb's; nothing for others)."""
    entry = schedule_of_config(h.config)
    if entry is None or not entry.hyperband:
        return ""
    from pbtnas.engine.bohb import rung_table, trial_history

    bohb = trial_history(h.run_dir)
    if not bohb or not bohb["trials"]:
        return "<h2>BOHB trials</h2><p id='bohb' class='muted'>no trial has started yet</p>"
    trials = bohb["trials"]
    ends: dict[str, int] = {}
    for t in trials:
        ends[t["end"]] = ends.get(t["end"], 0) + 1
    text = (
        f"{len(trials)} trials ({', '.join(f'{n} {end}' for end, n in sorted(ends.items()))}) trained "
        f"{bohb['member_steps']} of the budget's {bohb['budget_member_steps']} member steps (population x steps). "
        f"Each trial is a member trained from scratch; Hyperband (eta = {bohb['eta']}) stops it at a rung unless "
        f"its fitness is in the best 1/{bohb['eta']} of its bracket there; 'stopped' trials ran out of budget."
    )
    rungs = _table(
        ["bracket", "rung", "after steps", "trials reached", "went on", "pruned there"],
        [[r["bracket"], r["rung"], r["at_step"], r["reached"], _fmt(r["promoted"]), _fmt(r["pruned"])] for r in rung_table(bohb)],
    )
    rows = []
    for t in trials:
        values = [v for v in t["fitness"].values() if _finite(v)]
        where = {"pruned": f"pruned at rung {t['end_rung']} (step {t['end_step']})", "stopped": f"stopped by the budget (step {t['end_step']})"}.get(
            t["end"], t["end"]
        )
        rows.append(
            [
                t["trial"],
                t["source"],
                t["bracket"],
                t["steps"],
                ", ".join(str(s) for s in sorted(t["promoted"].values())) or "-",
                where,
                _fmt(t["fitness"].get(t["steps"])),
                _fmt(max(values) if values else None),
            ]
        )
    return (
        f"<h2>BOHB trials</h2><p id='bohb'>{_e(text)}</p>"
        + rungs
        + _table(["trial", "from", "bracket", "steps trained", "went on at step", "end", "last fitness", "best fitness"], rows)
    )


def _makes_children(algorithm: str | None) -> bool:
    """Whether ``algorithm``'s operator ever makes a child (an unknown name: assume it may)."""
    entry = ALGORITHMS.get(algorithm) if algorithm else None
    return entry is None or entry.operator.makes_children


def _children_table(h: RunHistory) -> str:
    children = h.children
    if not children:
        return ""
    rows = []
    for c in children:
        parent = h.members.get(c.primary) if c.primary is not None else None
        donor = h.members.get(c.donor) if c.donor is not None else None
        pf = parent.fitness.get(c.born_step) if parent else None
        df = donor.fitness.get(c.born_step) if donor else None
        if c.operator == "mix" and c.donor is None:  # no-mixing: layers perturbed towards themselves
            origin = "no donor; perturbed: " + (", ".join(c.details.get("genes_perturbed", [])) or "(none)")
        elif c.operator == "mix":
            origin = ", ".join(c.genes_from_donor) or "(none)"
        else:
            d = c.details
            origin = (
                f"{d.get('gene')}: {d.get('from')} -> {d.get('to')}"
                if d.get("gene")
                else f"{len(d.get('tensors', []))} tensor(s) perturbed"
                if "tensors" in d
                else "-"
            )
        fit = c.fitness
        rows.append(
            [
                c.uid,
                c.born_step + 1,
                c.slot,
                c.replaced_uid if c.replaced_uid is not None else "-",
                f"{c.primary} ({_fmt(pf)})",
                "-" if c.donor is None else f"{c.donor} ({_fmt(df)})",
                c.operator,
                origin,
                _fmt(fit[min(fit)]) if fit else "-",
            ]
        )
    return (
        "<p>Every child, the parents it came from and the genes (layers, with their weights, "
        "shrink-perturbed) it took from the donor; all other layers are the primary parent's.</p>"
        + _table(
            [
                "child",
                "after step",
                "slot",
                "replaced",
                "primary (fitness)",
                "donor (fitness)",
                "operator",
                "genes from donor / change",
                "first fitness",
            ],
            rows,
        )
    )


def _population_table(h: RunHistory) -> str:
    steps = h.trained_steps
    if not steps:
        return ""
    last = steps[-1]
    rows = []
    for m in h.population_at(last):
        born = "initial" if not m.is_child else f"after step {m.born_step + 1}"
        genome = ", ".join(f"{k}={v}" for k, v in m.genome.items())
        f = m.fitness[last]
        rows.append([m.slot, m.uid, born, "+".join(str(p) for p in m.parents) or "-", _fmt(f) if _finite(f) else "failed", genome])
    return f"<h2>Population at step {last + 1}</h2>" + _table(["slot", "uid", "born", "parents", h.fitness_name, "genome"], rows)
