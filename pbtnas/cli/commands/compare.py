"""``pbtnas compare``: algorithms x seeds with one budget, a paper-style table and paired tests."""

from __future__ import annotations

import sys

from pbtnas.cli.commands._options import add_budget_options, config_from_args


def register(sub) -> None:
    p = sub.add_parser(
        "compare",
        help="run several algorithms over several seeds and tabulate them",
        description="Run every algorithm with every seed under the same budget (the options of 'pbtnas run'), "
        "then write table.md / table.csv (mean ± std over seeds) with a one-sided Wilcoxon "
        "signed-rank test of the first algorithm against each other one on seed-paired runs. "
        "Finished runs in --out are reused, so an interrupted comparison continues.",
    )
    add_budget_options(p, algorithm=False)
    p.add_argument(
        "--algorithms",
        default="pbtnas,random,mutation",
        help="comma-separated algorithms; the first is the reference of the tests. Groups: "
        "'baselines' = pbtnas,random,mutation; 'ablations' = pbtnas,sp-1-0,sp-0-1,no-mixing",
    )
    p.add_argument("--seeds", type=int, default=3, help="number of seeds per algorithm (seeds --seed .. --seed+N-1)")
    p.add_argument("--out", required=True, help="folder for the runs and the tables")
    direction = p.add_mutually_exclusive_group()
    direction.add_argument(
        "--higher-is-better", dest="higher", action="store_true", default=None, help="the final metric is maximised (default: from the task)"
    )
    direction.add_argument("--lower-is-better", dest="higher", action="store_false", help="the final metric is minimised (default: from the task)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(handler=compare_command)


def compare_command(args) -> int:
    from pbtnas.analysis.compare import compare, parse_algorithms
    from pbtnas.errors import ConfigError

    algorithms = parse_algorithms(args.algorithms)
    if args.seeds < 1:
        raise ConfigError("--seeds must be at least 1")
    base = config_from_args(args).to_dict()
    first = base.get("seed", 0)
    seeds = list(range(first, first + args.seeds))
    log = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    result = compare(base, algorithms, seeds, args.out, higher_is_better=args.higher, log=log)
    print(result.markdown(), end="")
    print(f"tables: {args.out}/table.md, {args.out}/table.csv (per run: {args.out}/runs.csv)", file=sys.stderr)
    return 0
