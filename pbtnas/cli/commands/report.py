"""``pbtnas report``: the HTML report of a run (finished, running or stopped)."""

from __future__ import annotations

import sys


def register(sub) -> None:
    p = sub.add_parser(
        "report",
        help="write an HTML report with plots and the lineage of a run",
        description="Rebuild a run's history from its directory and write index.html with PNG plots: fitness "
        "over time, lineage tree and inherited layers, option frequencies per gene, best architecture, "
        "training metrics (RL returns) and sample images (GAN). Works on unfinished runs too.",
    )
    p.add_argument("run_dir", help="the run directory")
    p.add_argument("--out", help="folder for the report (default: RUN_DIR/report)")
    p.set_defaults(handler=report_command)


def report_command(args) -> int:
    from pbtnas.analysis.report import build_report, load_history
    from pbtnas.cli.commands._checks import run_config, writable_folder
    from pbtnas.rundir.store import RunStore

    # a config.yaml that is there must be valid (a missing one: the report says so and goes on);
    # a damaged manifest is a note of the report, which rebuilds the run from its journal
    store = RunStore(args.run_dir)
    run_config(store, required=False)
    writable_folder(args.out or f"{args.run_dir}/report")
    history = load_history(args.run_dir)  # once: the journal of a large run takes a while to read
    path = build_report(args.run_dir, args.out, history=history)
    if history.journal_damage:  # the report skipped damaged journal lines: say how many, once
        print(f"warning: {history.journal_damage}", file=sys.stderr)
    print(f"{history.status_text}")
    for note in history.notes:
        print(f"note: {note}")
    print(f"report: {path}")
    return 0
