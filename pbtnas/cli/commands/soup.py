"""``pbtnas soup``: uniform and greedy model soups of a finished run."""

from __future__ import annotations

import json

from pbtnas.cli.commands._trust import add_trust_code


def register(sub) -> None:
    p = sub.add_parser(
        "soup",
        help="average the weights of final members sharing the delivered architecture",
        description="Make a uniform and a greedy model soup (Wortsman et al., 2022) of the members of a "
        "finished run that share the delivered network's architecture; score them with "
        "the task's final metric; write them to RUN_DIR/soup/ (export with "
        "pbtnas export RUN_DIR --which soup-greedy).",
    )
    p.add_argument("run_dir", help="a finished run directory")
    add_trust_code(p)
    p.set_defaults(handler=soup_command)


def soup_command(args) -> int:
    from pbtnas.analysis.soup import make_soups

    result = make_soups(args.run_dir, trust_code=args.trust_code)
    metric = _metric_name(args.run_dir)
    if result.note:
        print(result.note)
        return 0
    delivered = result.delivered["final_metrics"].get(metric)
    print(f"{len(result.ingredients)} members share the delivered architecture (member {result.delivered_uid})")
    print(f"  delivered network: fitness {result.delivered['fitness']:.4f}, {metric} {delivered}")
    for name in ("uniform", "greedy"):
        soup = getattr(result, name)
        print(
            f"  {name} soup of {len(soup['members'])} ({', '.join(map(str, soup['members']))}): fitness "
            f"{soup['fitness']:.4f}, {metric} {soup['final_metrics'].get(metric)}"
        )
    print(json.dumps({"uniform": result.uniform["checkpoint"], "greedy": result.greedy["checkpoint"]}))
    return 0


def _metric_name(run_dir: str) -> str:
    from pbtnas.rundir.store import RunStore

    return (RunStore(run_dir).read_summary() or {}).get("final_metric_name", "metric")
