"""Every results table of the docs, rebuilt from the committed per-run data.

The per-run figures live in ``docs/results/<table>.csv`` (columns ``table,algorithm,seed,metric,
value``, one row per run and metric), written by ``benchmarks/gan_evidence.py``,
``benchmarks/evidence.py`` and ``benchmarks/classification_paradox.py``. The docs hold generated
blocks between marker lines::

    <!-- results:gan-baselines:summary -->
    ... generated, never edited by hand ...
    <!-- /results:gan-baselines:summary -->

Block names: ``TABLE:summary`` (per algorithm: mean ± sample std, median, runs, on how many seeds
the reference is better, the one-sided Wilcoxon signed-rank p of ``pbtnas compare``, where the
delivered network was made, CPU seconds), ``TABLE:seeds`` (the metric per seed) and
``headline:NAME`` (the paired figures the README quotes). ::

    python benchmarks/results_tables.py --write             # rewrite every block from the data
    python benchmarks/results_tables.py --check             # exit 1 at the first block that differs
    python benchmarks/results_tables.py --print gan-baselines:summary

A CSV with a missing or duplicated run, a non-numeric value or missing columns is refused with one
``error:`` line and exit status 2. A run is missing when an algorithm of the table lacks a seed
that another one has: every p and every "better on" count must be over the same, paired seeds,
so the collectors write complete seeds only. A table whose CSV does not exist yet renders as one
"no runs finished yet" line, so the docs can hold its blocks before its first seed finishes.
"""

from __future__ import annotations

import argparse
import csv
import math
import re
import sys
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from pbtnas.analysis.compare import paired_wilcoxon

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
DOCS = (ROOT / "docs" / "RESULTS.md", ROOT / "README.md")
COLUMNS = ("table", "algorithm", "seed", "metric", "value")
#: per-run metrics that add a column to the summary where a table has them
MADE_IN_SEARCH, CPU = "final_made_in_search", "cpu_s"


@dataclass(frozen=True)
class TableSpec:
    """One seed-paired comparison and how the docs show it."""

    name: str  #: the CSV's ``table`` column; the block names start with it
    csv: str  #: file name under docs/results/
    metric: str  #: the metric compared (one per run)
    metric_label: str  #: how the docs name it
    higher_is_better: bool
    reference: str  #: the algorithm every other one is paired with
    algorithms: tuple[str, ...]  #: row (and per-seed column) order; other algorithms are refused
    labels: Mapping[str, str] = field(default_factory=dict)  #: summary row labels
    short: Mapping[str, str] = field(default_factory=dict)  #: per-seed column labels (default: labels)
    digits: int = 4  #: decimals of the metric
    #: the one-sided claim tested on every pair: True "the reference is better" (a method against
    #: its baselines), False "the other is better than the reference" (variants of a default)
    reference_better: bool = True

    def label(self, algorithm: str) -> str:
        return self.labels.get(algorithm, algorithm)

    def short_label(self, algorithm: str) -> str:
        return self.short.get(algorithm, self.label(algorithm))


GAN_LABELS = {"pbtnas": "PBT-NAS, shrink-perturb (0.4, 0.1)", "random": "random search", "mutation": "mutation (SEARL-like)"}
CLASSIFICATION_LABELS = {"pbtnas": "PBT-NAS", "random": "random search", "mutation": "mutation (SEARL-like)", "bohb": "BOHB (TPE + Hyperband)"}

SPECS: tuple[TableSpec, ...] = (
    TableSpec(
        "gan-baselines",
        "gan-baselines.csv",
        "fd_clf_test",
        "FD-clf test",
        False,
        "pbtnas",
        ("pbtnas", "random", "mutation"),
        GAN_LABELS,
        {"pbtnas": "PBT-NAS", "random": "random", "mutation": "mutation"},
        digits=1,
    ),
    TableSpec(
        "gan-ablation",
        "gan-ablation.csv",
        "fd_clf_test",
        "FD-clf test",
        False,
        "pbtnas",
        ("pbtnas", "sp-1-0", "sp-0-1", "no-mixing"),
        {
            "pbtnas": "(0.4, 0.1), the paper's",
            "sp-1-0": "(1, 0): donor layers copied exactly",
            "sp-0-1": "(0, 1): donor layers re-initialised",
            "no-mixing": 'no mixing: the "donor" is the primary parent itself',
        },
        {"pbtnas": "PBT-NAS (0.4, 0.1)", "sp-1-0": "(1, 0)", "sp-0-1": "(0, 1)", "no-mixing": "no mixing"},
        digits=1,
    ),
    TableSpec(
        "classification-paired",
        "classification-paired.csv",
        "test_accuracy",
        "test accuracy",
        True,
        "pbtnas",
        ("pbtnas", "random", "mutation", "bohb"),
        CLASSIFICATION_LABELS,
        {"pbtnas": "PBT-NAS", "random": "random", "mutation": "mutation", "bohb": "BOHB"},
    ),
    TableSpec(
        "sequence",
        "sequence.csv",
        "test_accuracy",
        "test accuracy",
        True,
        "pbtnas",
        ("pbtnas", "random", "bohb"),
        CLASSIFICATION_LABELS,
        {"pbtnas": "PBT-NAS", "random": "random", "bohb": "BOHB"},
    ),
    TableSpec(
        "classification-paradox",
        "classification-paradox.csv",
        "test",
        "delivered test accuracy",
        True,
        "default",
        ("default", "sp-params", "sel-best", "sel-topk"),
        {
            "default": "default (the paper's behaviour)",
            "sp-params": "sp-params: BatchNorm statistics copied",
            "sel-best": "sel-best: selection split, best-ever",
            "sel-topk": "sel-topk: selection split, top 3 re-scored",
        },
        {"default": "default", "sp-params": "sp-params", "sel-best": "sel-best", "sel-topk": "sel-topk"},
        reference_better=False,
    ),
)

#: the paired comparisons the README quotes: (table, first, second), "first better on k of n"
HEADLINES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "gan": (
        ("gan-baselines", "pbtnas", "random"),
        ("gan-baselines", "pbtnas", "mutation"),
        ("gan-baselines", "mutation", "random"),
        ("gan-ablation", "pbtnas", "sp-1-0"),
        ("gan-ablation", "pbtnas", "sp-0-1"),
        ("gan-ablation", "pbtnas", "no-mixing"),
    ),
    # the question people bring: at equal compute, is PBT-NAS better than the baselines?
    "evidence": (
        ("gan-baselines", "pbtnas", "random"),
        ("gan-baselines", "pbtnas", "mutation"),
        ("classification-paired", "pbtnas", "random"),
        ("classification-paired", "pbtnas", "mutation"),
        ("classification-paired", "pbtnas", "bohb"),
        ("sequence", "pbtnas", "random"),
        ("sequence", "pbtnas", "bohb"),
    ),
}


class DataError(Exception):
    """A CSV the tables cannot be built from; ``str()`` is the one-line message."""

    def __init__(self, path: Path, what: str, algorithm: str | None = None, seed: object = None):
        where = "" if algorithm is None else f" (algorithm {algorithm}, seed {seed})"
        super().__init__(f"{shown(path)}: {what}{where}")


class DocError(Exception):
    """A doc whose markers cannot be matched (unclosed, unknown block name)."""


def shown(path: Path) -> str:
    """A path as messages show it: relative to the repository when inside it."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


# -- reading ----------------------------------------------------------------------------------
@dataclass
class TableData:
    """The checked per-run figures of one table: algorithm -> seed -> metric -> value."""

    spec: TableSpec
    exists: bool
    runs: dict[str, dict[int, dict[str, float]]] = field(default_factory=dict)

    def metric(self, algorithm: str, metric: str | None = None) -> dict[int, float]:
        """seed -> value of ``metric`` (default: the table's) for the runs that have it."""
        key = metric or self.spec.metric
        return {seed: figures[key] for seed, figures in self.runs.get(algorithm, {}).items() if key in figures}

    def seeds(self) -> list[int]:
        return sorted({seed for runs in self.runs.values() for seed in runs})


def load(spec: TableSpec, results: Path) -> TableData:
    """Read and check ``results/spec.csv``; a missing file is a table with no runs yet."""
    path = results / spec.csv
    if not path.exists():
        return TableData(spec, exists=False)
    data = TableData(spec, exists=True)
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(path, f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}; expected {','.join(COLUMNS)}")
        for row in reader:
            if row["table"] != spec.name:
                continue  # another table's rows in the same file (e.g. the paradox's contenders)
            algorithm, metric, text = row["algorithm"], row["metric"], row["value"]
            try:
                seed = int(row["seed"])
            except (TypeError, ValueError):
                raise DataError(path, f"seed {row['seed']!r} is not an integer", algorithm, row["seed"]) from None
            if algorithm not in spec.algorithms:
                raise DataError(path, f"algorithm not in the table's spec (known: {', '.join(spec.algorithms)})", algorithm, seed)
            try:
                value = float(text)
            except (TypeError, ValueError):
                raise DataError(path, f"non-numeric value {text!r} of metric {metric}", algorithm, seed) from None
            if not math.isfinite(value):
                raise DataError(path, f"non-finite value {text!r} of metric {metric}", algorithm, seed)
            figures = data.runs.setdefault(algorithm, {}).setdefault(seed, {})
            if metric in figures:
                raise DataError(path, f"duplicated row for metric {metric}", algorithm, seed)
            figures[metric] = value
    seeds = data.seeds()
    for algorithm in spec.algorithms:
        for seed in seeds:
            if seed not in data.runs.get(algorithm, {}):
                raise DataError(path, "missing run: another algorithm of the table has this seed", algorithm, seed)
            if spec.metric not in data.runs[algorithm][seed]:
                raise DataError(path, f"run lacks the table's metric {spec.metric}", algorithm, seed)
    return data


def load_all(results: Path) -> dict[str, TableData]:
    return {spec.name: load(spec, results) for spec in SPECS}


# -- rendering --------------------------------------------------------------------------------
def seed_range(seeds: list[int]) -> str:
    """``[0, 1, 2, 3]`` -> ``0–3``; gaps -> a list."""
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}–{seeds[-1]}"
    return ", ".join(map(str, seeds))


def p_text(test: dict) -> str:
    p = test["p_value"]
    if p is None:
        return "–"
    if math.isnan(p):
        return f"n/a (all {test['pairs']} pairs tied)"
    return f"{p:.3g}"


def better(first: dict[int, float], second: dict[int, float], higher_is_better: bool) -> tuple[int, int]:
    """On how many of the shared seeds ``first`` is strictly better, and how many seeds are shared."""
    seeds = sorted(set(first) & set(second))
    a, b = np.array([first[s] for s in seeds]), np.array([second[s] for s in seeds])
    wins = (a > b) if higher_is_better else (a < b)
    return int(wins.sum()), len(seeds)


def no_runs(data: TableData) -> str:
    where = f"`docs/results/{data.spec.csv}`"
    return f"No runs finished yet ({where} {'has no rows of this table' if data.exists else 'does not exist yet'}).\n"


def render_summary(data: TableData) -> str:
    """Per algorithm: mean ± sample std (ddof=1), median, runs, the paired figures against the
    reference, and where the table has them where the delivered network was made and CPU seconds."""
    spec = data.spec
    if not data.runs:
        return no_runs(data)
    ref_label = spec.short_label(spec.reference)
    direction = "higher" if spec.higher_is_better else "lower"
    has_made = any(MADE_IN_SEARCH in f for runs in data.runs.values() for f in runs.values())
    has_cpu = any(CPU in f for runs in data.runs.values() for f in runs.values())
    claim = f"{ref_label} better" if spec.reference_better else f"better than {ref_label}"
    header = ["algorithm", f"{spec.metric_label}, mean ± std", "median", "runs", f"{claim} on", f"p ({claim})"]
    header += ["final network made in the search"] if has_made else []
    header += ["mean CPU s per run"] if has_cpu else []
    lines = [
        f"From `docs/results/{spec.csv}`, seeds {seed_range(data.seeds())}: {spec.metric_label}, {direction} is better; "
        f"mean ± sample std (ddof=1); p: one-sided Wilcoxon signed-rank test, paired by seed, that "
        + (f"{ref_label} is better." if spec.reference_better else f"the variant is better than {ref_label}.")
        + (
            " Made in the search: the delivered network is not one of the initial population (a child, or a trial proposed later)."
            if has_made
            else ""
        )
        + (" CPU s: all processes of a run." if has_cpu else ""),
        "",
        "| " + " | ".join(header) + " |",
        "|" + " --- |" * len(header),
    ]
    reference = data.metric(spec.reference)
    for algorithm in spec.algorithms:
        values = data.metric(algorithm)
        arr = np.array([values[s] for s in sorted(values)])
        d = spec.digits
        mean = f"{arr.mean():.{d}f}" + (f" ± {np.std(arr, ddof=1):.{d}f}" if len(arr) > 1 else "")
        if algorithm == spec.reference:
            wins, p = "–", "–"
        else:
            first, second = (reference, values) if spec.reference_better else (values, reference)
            k, n = better(first, second, spec.higher_is_better)
            wins = f"{k} of {n} seeds"
            p = p_text(paired_wilcoxon(first, second, spec.higher_is_better))
        cells = [spec.label(algorithm), mean, f"{np.median(arr):.{d}f}", str(len(arr)), wins, p]
        if has_made:
            made = data.metric(algorithm, MADE_IN_SEARCH)
            cells.append(f"{sum(v > 0.5 for v in made.values())} of {len(made)} runs" if made else "–")
        if has_cpu:
            cpu = data.metric(algorithm, CPU)
            text = f"{np.mean(list(cpu.values())):,.0f}" if cpu else "–"
            cells.append(text + (f" ({len(cpu)} runs)" if cpu and len(cpu) < len(arr) else ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def render_seeds(data: TableData) -> str:
    """The table's metric per seed, one column per algorithm."""
    spec = data.spec
    if not data.runs:
        return no_runs(data)
    direction = "higher" if spec.higher_is_better else "lower"
    lines = [
        f"Per seed, {spec.metric_label} ({direction} is better):",
        "",
        "| seed | " + " | ".join(spec.short_label(a) for a in spec.algorithms) + " |",
        "| --- |" + " --- |" * len(spec.algorithms),
    ]
    for seed in data.seeds():
        cells = []
        for algorithm in spec.algorithms:
            value = data.metric(algorithm).get(seed)
            cells.append("–" if value is None else f"{value:.{spec.digits}f}")
        lines.append(f"| {seed} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def render_headline(tables: dict[str, TableData], comparisons: tuple[tuple[str, str, str], ...]) -> str:
    """One row per paired comparison: on how many seeds the first is better, the medians and p."""
    lines = [
        "| comparison (seed-paired) | first better on | medians | one-sided Wilcoxon p (first better) |",
        "| --- | --- | --- | --- |",
    ]
    for table, first, second in comparisons:
        data = tables[table]
        spec = data.spec
        a, b = data.metric(first), data.metric(second)
        if not data.runs:
            lines.append(f"| {table}: {spec.short_label(first)} vs {spec.short_label(second)} ({spec.metric_label}) | no runs finished yet | – | – |")
            continue
        k, n = better(a, b, spec.higher_is_better)
        medians = f"{np.median(list(a.values())):.{spec.digits}f} vs {np.median(list(b.values())):.{spec.digits}f}"
        p = p_text(paired_wilcoxon(a, b, spec.higher_is_better))
        direction = "higher" if spec.higher_is_better else "lower"
        name = f"{table}: {spec.short_label(first)} vs {spec.short_label(second)} ({spec.metric_label}, {direction} is better)"
        lines.append(f"| {name} | {k} of {n} seeds | {medians} | {p} |")
    return "\n".join(lines) + "\n"


def renderers(tables: dict[str, TableData]) -> dict[str, Callable[[], str]]:
    """Every block name the docs may hold -> its renderer."""
    out: dict[str, Callable[[], str]] = {}
    for name, data in tables.items():
        out[f"{name}:summary"] = partial(render_summary, data)
        out[f"{name}:seeds"] = partial(render_seeds, data)
    for name, comparisons in HEADLINES.items():
        out[f"headline:{name}"] = partial(render_headline, tables, comparisons)
    return out


# -- the docs ---------------------------------------------------------------------------------
OPEN = re.compile(r"^<!-- results:(\S+) -->$")
CLOSE = "<!-- /results:{} -->"


@dataclass
class Block:
    """One generated block of a doc: its name and the 0-based line span of its content."""

    name: str
    start: int  #: first content line (the line after the opening marker)
    end: int  #: the closing marker's line


def blocks(path: Path, lines: list[str], known: Mapping[str, object]) -> list[Block]:
    found = []
    i = 0
    while i < len(lines):
        match = OPEN.match(lines[i])
        if match:
            name = match.group(1)
            if name not in known:
                raise DocError(f"{shown(path)}: line {i + 1}: unknown block {name!r} (known: {', '.join(sorted(known))})")
            end = next((j for j in range(i + 1, len(lines)) if lines[j] == CLOSE.format(name)), None)
            if end is None:
                raise DocError(f"{shown(path)}: line {i + 1}: block {name} has no closing {CLOSE.format(name)}")
            found.append(Block(name, i + 1, end))
            i = end
        i += 1
    return found


def rebuild(path: Path, tables: dict[str, TableData]) -> tuple[list[str], list[str], list[Block]]:
    """The doc's lines as they are, as they should be, and its blocks (in the current lines)."""
    known = renderers(tables)
    current = path.read_text().splitlines()
    found = blocks(path, current, known)
    expected = list(current)
    for block in reversed(found):  # from the end, so earlier spans stay valid
        expected[block.start : block.end] = known[block.name]().splitlines()
    return current, expected, found


def first_difference(path: Path, tables: dict[str, TableData]) -> str | None:
    """None when every block of the doc matches the data, else a message naming the first
    difference: the block, the line, what the data gives and what the doc has."""
    current, _, found = rebuild(path, tables)
    known = renderers(tables)
    for block in found:
        have = current[block.start : block.end]
        want = known[block.name]().splitlines()
        for i in range(max(len(have), len(want))):
            h = have[i] if i < len(have) else "(end of block)"
            w = want[i] if i < len(want) else "(end of block)"
            if h != w:
                return (
                    f"{shown(path)}: block {block.name}, line {block.start + i + 1} (line {i + 1} of the block) differs from the data\n"
                    f"  expected: {w}\n"
                    f"  found:    {h}"
                )
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite every generated block from the data")
    mode.add_argument("--check", action="store_true", help="exit 1 naming the first block that differs from the data")
    mode.add_argument("--print", metavar="BLOCK", help="print one block (e.g. gan-baselines:summary)")
    ap.add_argument("--results", type=Path, default=RESULTS, help="the folder of the CSVs (default: docs/results)")
    ap.add_argument("--docs", type=Path, nargs="+", default=list(DOCS), help="docs holding blocks (default: docs/RESULTS.md README.md)")
    args = ap.parse_args(argv)
    try:
        tables = load_all(args.results)
        if args.print:
            known = renderers(tables)
            if args.print not in known:
                raise DocError(f"unknown block {args.print!r} (known: {', '.join(sorted(known))})")
            print(known[args.print](), end="")
            return 0
        for path in args.docs:
            if args.check:
                difference = first_difference(path, tables)
                if difference:
                    print(difference)
                    print("(python benchmarks/results_tables.py --write rebuilds the blocks)")
                    return 1
            else:
                current, expected, found = rebuild(path, tables)
                if current != expected:
                    path.write_text("\n".join(expected) + "\n")
                    print(f"rewrote {shown(path)} ({len(found)} blocks)")
        if args.check:
            print(f"{len(args.docs)} docs agree with the data")
        return 0
    except (DataError, DocError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
