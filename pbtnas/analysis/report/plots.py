"""The report's figures (matplotlib, Agg backend). Each function draws one PNG from a
:class:`~pbtnas.analysis.report.history.RunHistory` and returns its path, or ``None`` when the run holds
nothing to draw (e.g. no child was made yet)."""

from __future__ import annotations

import math
from pathlib import Path

from pbtnas.analysis.report.history import RunHistory, _finite
from pbtnas.errors import require

DPI = 100
#: rows of the gene-origin figure; older children are left out (the page's table lists them all)
MAX_CHILD_ROWS = 150
#: the lineage figure labels each bar with its uid up to this many individuals (beyond, labels
#: overlap and thousands of text artists make the report slow; the page's tables list every uid)
MAX_LINEAGE_LABELS = 300
#: the lineage figure's height in inches at most (a 256-member run would otherwise be 117 inches)
MAX_LINEAGE_HEIGHT = 30.0
#: slot names on the lineage figure's axis at most (every k-th slot beyond)
MAX_SLOT_TICKS = 40


def _plt():
    matplotlib = require("matplotlib", "report")
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    _plt().close(fig)
    return path


def _step_axis(ax, steps: list[int]) -> None:
    ax.set_xlabel("step")
    if steps and len(steps) <= 20:
        ax.set_xticks(steps)
        ax.set_xticklabels([str(s + 1) for s in steps])
    else:
        ax.xaxis.set_major_formatter(_plt().FuncFormatter(lambda v, _: f"{int(v) + 1}"))


def fitness_plot(h: RunHistory, path: Path) -> Path | None:
    """Fitness of every member over time (thin lines, one per individual; a child's line starts at
    its primary parent's point) and the population's best per step and best so far (thick)."""
    curve = h.best_per_step()
    if not curve:
        return None
    plt = _plt()
    from matplotlib.collections import LineCollection

    fig, ax = plt.subplots(figsize=(9, 4.5))
    cmap = plt.get_cmap("tab20")
    # one collection for all members' lines and one for their points: thousands of separate
    # artists made a large run's report take tens of seconds
    lines, colors, points, point_colors = [], [], [], []
    for m in sorted(h.members.values(), key=lambda m: m.uid):
        pts = [(s, f) for s, f in sorted(m.fitness.items()) if _finite(f)]
        parent = h.members.get(m.primary) if m.primary is not None else None
        if parent is not None and _finite(parent.fitness.get(m.born_step)):
            pts.insert(0, (m.born_step, parent.fitness[m.born_step]))
        if pts:
            lines.append(pts)
            colors.append(cmap(m.slot % 20))
            points += pts
            point_colors += [cmap(m.slot % 20)] * len(pts)
    if lines:
        ax.add_collection(LineCollection(lines, colors=colors, linewidths=0.8, alpha=0.6))
        xs, ys = zip(*points)
        ax.scatter(xs, ys, s=6, c=point_colors, alpha=0.6, linewidths=0)
    steps = [c[0] for c in curve]
    ax.plot(steps, [c[1] for c in curve], color="black", lw=2.2, label="population best at step")
    ax.plot(steps, [c[2] for c in curve], color="crimson", lw=1.5, ls="--", label="best so far")
    ax.set_ylabel(h.fitness_name + " (fitness, higher is better)")
    ax.set_title("Fitness per member (colour: slot) and of the population")
    _step_axis(ax, h.trained_steps)
    # outside the axes: a legend inside covers the members' lines wherever it is put
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def lineage_plot(h: RunHistory, path: Path) -> Path | None:
    """The lineage tree: one bar per individual over the steps it lived, in its slot; a child is
    linked to its primary parent (solid) and its donor (dashed) at its birth."""
    members = [m for m in h.members.values() if m.fitness or m.is_child]
    if not members:
        return None
    plt = _plt()
    from matplotlib.collections import LineCollection

    steps = h.trained_steps or [0]
    slots = sorted({m.slot for m in members})
    height = min(MAX_LINEAGE_HEIGHT, max(3.5, 0.45 * len(slots) + 1.5))
    fig, ax = plt.subplots(figsize=(max(8, 0.6 * len(steps) + 3), height))
    bar_width = min(7.0, 0.6 * 72 * (height - 1.5) / max(1, len(slots)))  # points: bars of neighbouring slots stay apart
    finite = [f for m in members for f in m.fitness.values() if _finite(f)]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
    norm = plt.Normalize(lo, hi if hi > lo else lo + 1e-9)
    cmap = plt.get_cmap("viridis")
    labelled = len(members) <= MAX_LINEAGE_LABELS
    where = {}
    bars, colors = [], []
    for m in members:
        start = m.born_step + 0.5 if m.is_child else -0.5
        end = (m.removed_step + 0.5) if m.removed_step is not None else max(steps) + 0.5
        where[m.uid] = (start, end, m.slot)
        last = m.last_fitness
        bars.append([(start + 0.03, m.slot), (end - 0.03, m.slot)])
        colors.append(cmap(norm(last)) if _finite(last) else "lightgrey")
        if labelled:
            ax.text(start + 0.05, m.slot - 0.25, str(m.uid), fontsize=7, va="center")
    # collections, not one artist per bar and arrow: a 256-member run has thousands of each
    ax.add_collection(LineCollection(bars, colors=colors, linewidths=bar_width, capstyle="butt"))
    links: dict[str, list] = {"solid": [], "dashed": []}
    for m in members:
        if not m.is_child:
            continue
        x = m.born_step + 0.5
        for parent, style in ((m.primary, "solid"), (m.donor, "dashed")):
            if parent not in where or (style == "dashed" and parent == m.primary):
                continue  # unknown parent, or no-mixing (the donor is the primary parent)
            links[style].append([(x - 0.35, where[parent][2]), (x, m.slot)])
    for style, segments in links.items():
        if segments:
            ax.add_collection(LineCollection(segments, colors="black", linewidths=0.8, linestyles=style))
    heads = links["solid"] + links["dashed"]
    if heads:  # the arrows' heads: one marker at each child's end
        ax.plot([s[1][0] for s in heads], [s[1][1] for s in heads], ">", color="black", ms=3, ls="none")
    every = max(1, math.ceil(len(slots) / MAX_SLOT_TICKS))
    ax.set_yticks(slots[::every])
    ax.set_yticklabels([f"slot {s}" for s in slots[::every]])
    ax.set_xlim(-0.6, max(steps) + 0.6)
    ax.set_ylim(max(slots) + 0.7, min(slots) - 0.7)  # slot 0 on top
    _step_axis(ax, steps)
    label = "Lineage: bars = individuals (label: uid, " if labelled else f"Lineage of {len(members)} individuals: bars ("
    ax.set_title(f"{label}colour: last fitness); arrows: primary parent (solid), donor (dashed)", fontsize=9)
    sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(sm, ax=ax, label=h.fitness_name, fraction=0.03)
    return _save(fig, path)


def inheritance_plot(h: RunHistory, path: Path) -> Path | None:
    """Which genes (layers) every child took from which parent: one row per child, one column
    per gene; primary parent, donor (layer weights shrink-perturbed, a hyperparameter, or a
    weightless choice), or mutated."""
    children = h.children
    if not children or not h.gene_names:
        return None
    total = len(children)
    children = children[-MAX_CHILD_ROWS:]  # keep the figure readable on long runs
    plt = _plt()
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    labels = ["primary parent", "donor: layer + weights", "donor: weightless choice", "mutated / fresh", "donor: hyperparameter"]
    colors = ["#dfe7f2", "#e8743b", "#f5c242", "#c0392b", "#7fb77e"]
    grid = []
    for child in children:
        row = []
        mutated = child.details.get("gene")
        for gene in h.gene_names:
            if gene == mutated:
                row.append(3)
            elif gene in child.genes_from_donor:
                row.append(1 if gene in h.weight_genes else 4 if gene in h.hyper_genes else 2)
            else:
                row.append(0)
        grid.append(row)
    fig, ax = plt.subplots(figsize=(max(6, 0.28 * len(h.gene_names) + 3), max(2.5, 0.3 * len(children) + 1.8)))
    ax.imshow(grid, cmap=ListedColormap(colors), vmin=0, vmax=len(colors) - 1, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(len(h.gene_names)))
    ax.set_xticklabels(h.gene_names, rotation=90, fontsize=6 if len(h.gene_names) > 30 else 8)
    ax.set_yticks(range(len(children)))
    ax.set_yticklabels([f"uid {c.uid} (step {c.born_step + 1}): {c.primary}+{c.donor}" for c in children], fontsize=7)
    shown = "" if total == len(children) else f" - the last {len(children)} of {total} children"
    ax.set_title(f"Origin of each gene of each child (label: primary+donor){shown}", fontsize=9)
    ax.legend(handles=[Patch(color=c, label=lab) for c, lab in zip(colors, labels)], fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save(fig, path)


def options_plot(h: RunHistory, path: Path) -> Path | None:
    """How often each option of each gene is present in the population, per step (stacked)."""
    counts = h.option_counts()
    steps = h.trained_steps
    if not steps or not counts:
        return None
    plt = _plt()
    genes = h.gene_names
    ncols = min(4, len(genes))
    nrows = math.ceil(len(genes) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 2.3 * nrows), squeeze=False, sharex=True)
    cmap = plt.get_cmap("tab10")
    for ax, gene in zip(axes.flat, genes):
        options = list(h.gene_options.get(gene, []))
        for per_step in counts[gene]:
            options += [o for o in per_step if o not in options]
        totals = [max(1, sum(c.values())) for c in counts[gene]]
        series = [[c.get(o, 0) / t for c, t in zip(counts[gene], totals)] for o in options]
        ax.stackplot(steps, series, labels=[str(o) for o in options], colors=[cmap(i % 10) for i in range(len(options))], step=None)
        ax.set_title(gene, fontsize=8)
        ax.set_ylim(0, 1)
        ax.tick_params(labelsize=6)
        ax.legend(fontsize=5, loc="upper left", ncol=2, framealpha=0.6)
    for ax in list(axes.flat)[len(genes) :]:
        ax.axis("off")
    for ax in axes[-1]:
        _step_axis(ax, steps)
    fig.suptitle("Share of the population holding each option, per step", fontsize=10)
    return _save(fig, path)


def architecture_plot(h: RunHistory, path: Path) -> Path | None:
    """The best network's genome as a grid: one row per group (text before the last dot of a
    gene name, e.g. a cell), one box per gene with its option."""
    genome = h.best_genome()
    if not genome:
        return None
    plt = _plt()
    groups: dict[str, list[tuple[str, object]]] = {}
    for gene, option in genome.items():
        group, _, name = gene.rpartition(".")
        groups.setdefault(group or "genes", []).append((name or gene, option))
    width = max(len(v) for v in groups.values())
    fig, ax = plt.subplots(figsize=(min(22, 1.6 * width + 1.6), 0.55 * len(groups) + 1.0))
    ax.set_xlim(-1.6, width)
    ax.set_ylim(len(groups) - 0.5, -0.7)
    ax.axis("off")
    for row, (group, genes) in enumerate(groups.items()):
        ax.text(-1.55, row, group, fontsize=8, va="center", weight="bold")
        for col, (name, option) in enumerate(genes):
            full = f"{group}.{name}" if group != "genes" else name
            face = "#fde2c8" if full in h.weight_genes else "#dcefdc" if full in h.hyper_genes else "#e8eef7"
            ax.add_patch(_plt().Rectangle((col - 0.47, row - 0.4), 0.94, 0.8, facecolor=face, edgecolor="grey"))
            ax.text(col, row - 0.14, name, fontsize=6, ha="center", va="center", color="dimgray")
            ax.text(col, row + 0.16, str(option), fontsize=7, ha="center", va="center")
    ax.set_title("Best network's architecture (orange: layer genes, green: hyperparameters, blue: weightless choices)", fontsize=9)
    return _save(fig, path)


def metrics_plot(h: RunHistory, path: Path) -> Path | None:
    """Training metrics reported by the task per step (RL: episode returns; GAN: losses): the
    population mean with its min-max band, and the value of the step's fittest member."""
    names = h.metric_names()
    steps = h.trained_steps
    if not names or not steps:
        return None
    plt = _plt()
    ncols = min(3, len(names))
    nrows = math.ceil(len(names) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 2.8 * nrows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        xs, mean, lo, hi, lead = [], [], [], [], []
        for step in steps:
            pop = h.population_at(step)
            values = [m.metrics.get(step, {}).get(name) for m in pop]
            values = [v for v in values if _finite(v)]
            if not values:
                continue
            fittest = max(pop, key=lambda m: m.fitness[step] if _finite(m.fitness[step]) else -math.inf)
            xs.append(step)
            mean.append(sum(values) / len(values))
            lo.append(min(values))
            hi.append(max(values))
            v = fittest.metrics.get(step, {}).get(name)
            lead.append(v if _finite(v) else float("nan"))
        ax.fill_between(xs, lo, hi, alpha=0.2, color="tab:blue", label="population min-max")
        ax.plot(xs, mean, color="tab:blue", label="population mean")
        ax.plot(xs, lead, color="black", ls="--", lw=1, label="fittest member")
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        _step_axis(ax, steps)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6, loc="best")
    return _save(fig, path)


def _episodes(member, step: int) -> list[float]:
    """The finite evaluation-episode returns a member reported at ``step`` (none when it did not
    train then, or reported something other than a list)."""
    values = (member.metrics.get(step) or {}).get("eval_returns")
    return [v for v in values if _finite(v)] if isinstance(values, list) else []


def returns_plot(h: RunHistory, path: Path) -> Path | None:
    """RL: the evaluation return against environment frames (each individual, and the population's
    best with its episodes' spread), and every evaluation episode's return per step."""
    steps = h.trained_steps
    if not steps or not any("frames" in m for r in h.members.values() for m in r.metrics.values()):
        return None
    plt = _plt()
    episodes = any("eval_returns" in m for r in h.members.values() for m in r.metrics.values())
    fig, axes = plt.subplots(1, 2 if episodes else 1, figsize=(13 if episodes else 8, 4.5), squeeze=False)
    ax = axes[0][0]
    cmap = plt.get_cmap("tab20")
    for m in sorted(h.members.values(), key=lambda m: m.uid):
        pts = [(m.metrics[s].get("frames"), f) for s, f in sorted(m.fitness.items()) if _finite(f) and _finite(m.metrics.get(s, {}).get("frames"))]
        parent = h.members.get(m.primary) if m.primary is not None else None
        if parent is not None and _finite(parent.fitness.get(m.born_step)) and _finite(parent.metrics.get(m.born_step, {}).get("frames")):
            pts.insert(0, (parent.metrics[m.born_step]["frames"], parent.fitness[m.born_step]))
        if pts:
            xs, ys = zip(*pts)
            ax.plot(xs, ys, "-o", color=cmap(m.slot % 20), lw=0.7, ms=2, alpha=0.5)
    best = []
    for step in steps:
        pop = [m for m in h.population_at(step) if _finite(m.fitness[step])]
        if not pop:
            continue
        lead = max(pop, key=lambda m: m.fitness[step])
        metrics = lead.metrics.get(step, {})
        if _finite(metrics.get("frames")):
            best.append(
                (
                    metrics["frames"],
                    lead.fitness[step],
                    metrics.get("eval_return_min"),
                    metrics.get("eval_return_max"),
                    metrics.get("eval_return_std"),
                )
            )
    if best:
        best_x = [b[0] for b in best]
        ax.plot(best_x, [b[1] for b in best], color="black", lw=2, label="population best (mean of its episodes)")
        # the band and error bars belong to the best member's points (best_x), whatever member
        # the loop above drew last; steps whose leader lacks the spread are left out of them
        band = [b for b in best if _finite(b[2]) and _finite(b[3])]
        if band:
            ax.fill_between(
                [b[0] for b in band], [b[2] for b in band], [b[3] for b in band], color="black", alpha=0.12, label="its episodes: min-max"
            )
        bars = [b for b in best if _finite(b[4])]
        if bars:
            ax.errorbar(
                [b[0] for b in bars],
                [b[1] for b in bars],
                yerr=[b[4] for b in bars],
                fmt="none",
                ecolor="black",
                capsize=3,
                lw=0.8,
                label="± std over episodes",
            )
    ax.set_xlabel("environment frames (per member, inherited by children)")
    ax.set_ylabel("evaluation return")
    ax.set_title("Evaluation return against environment frames", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3)  # below: inside it covers points
    if episodes:
        ax = axes[0][1]
        for step in steps:
            pop = h.population_at(step)
            for m in pop:
                values = _episodes(m, step)
                if values:
                    jitter = [step + 0.25 * ((i + 0.5) / len(values) - 0.5) for i in range(len(values))]
                    ax.scatter(jitter, values, s=5, color="grey", alpha=0.35, lw=0)
            alive = [m for m in pop if _finite(m.fitness[step])]
            if alive:
                lead = max(alive, key=lambda m: m.fitness[step])
                values = _episodes(lead, step)
                if values:
                    mean = sum(values) / len(values)
                    std = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
                    ax.scatter([step] * len(values), values, s=10, color="crimson", lw=0, zorder=3)
                    ax.errorbar([step], [mean], yerr=[std], fmt="_", color="black", capsize=4, ms=14, zorder=4)
        ax.set_ylabel("return of one evaluation episode")
        ax.set_title("Every evaluation episode: all members (grey),\nthe fittest (red) with mean ± std", fontsize=9)
        ax.grid(alpha=0.3)
        _step_axis(ax, steps)
    return _save(fig, path)


def front_plot(h: RunHistory, path: Path) -> Path | None:
    """A multi-objective run's Pareto front against every evaluated member: one grey point per
    evaluation (member and step), the front's members highlighted and joined in the order of the
    first axis, each axis named with its direction. Three or more objectives: one panel per pair."""
    front = h.front
    if front is None:
        return None
    names = front.names
    seen = [values for _, _, values in h.evaluated_objectives()]
    kept = [m.get("objectives") or {} for m in front.members]
    if len(names) < 2 or not (seen or kept):
        return None
    plt = _plt()
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    cols = min(3, len(pairs))
    rows = math.ceil(len(pairs) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 4.4 * rows), squeeze=False)
    for ax, (x, y) in zip(axes.flat, pairs):
        points = [(v[x], v[y]) for v in seen if _finite(v.get(x)) and _finite(v.get(y))]
        if points:
            xs, ys = zip(*points)
            ax.scatter(xs, ys, s=10, color="0.65", alpha=0.6, linewidths=0, label=f"every evaluation ({len(points)})")
        best = sorted(
            ((v[x], v[y], m.get("uid"), m.get("feasible", True)) for v, m in zip(kept, front.members) if _finite(v.get(x)) and _finite(v.get(y))),
            key=lambda p: p[0],
        )
        if best:
            if len(names) == 2:  # in a pairwise panel of 3+ objectives the points need not form a curve
                ax.plot([p[0] for p in best], [p[1] for p in best], color="crimson", lw=1.2, alpha=0.8)
            colors = ["crimson" if p[3] else "darkorange" for p in best]
            ax.scatter([p[0] for p in best], [p[1] for p in best], s=40, c=colors, edgecolors="black", linewidths=0.6, zorder=3, label="Pareto front")
            if len(best) <= 40:
                for px, py, uid, _ in best:
                    ax.annotate(str(uid), (px, py), textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.set_xlabel(front.axis_label(x))
        ax.set_ylabel(front.axis_label(y))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    for ax in list(axes.flat)[len(pairs) :]:
        ax.axis("off")
    title = "Pareto front (labels: member uid; orange: infeasible)\nand every evaluated member (grey)"
    if len(pairs) == 1:
        axes.flat[0].set_title(title, fontsize=9)
    else:
        fig.suptitle(title.replace("\n", " "), fontsize=10)
    return _save(fig, path)


def hypervolume_plot(h: RunHistory, path: Path) -> Path | None:
    """The hypervolume of the front kept so far after every step (reference point in the title)."""
    front = h.front
    if front is None or not front.hypervolume:
        return None
    plt = _plt()
    curve = sorted((int(p["step"]), float(p["value"])) for p in front.hypervolume if _finite(p.get("value")))
    if not curve:
        return None
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.plot([c[0] for c in curve], [c[1] for c in curve], marker="o", color="crimson", lw=1.6)
    ax.set_ylabel("hypervolume (higher is better)")
    reference = ", ".join(f"{k} = {v:.4g}" for k, v in front.reference.items())
    ax.set_title(f"Hypervolume of the front so far (reference point: {reference})" if reference else "Hypervolume of the front so far", fontsize=9)
    _step_axis(ax, [c[0] for c in curve])
    ax.grid(alpha=0.3)
    return _save(fig, path)
