"""``pbtnas export``: the best network as genome JSON, safetensors weights and TorchScript."""

from __future__ import annotations

import sys

from pbtnas.cli.commands._trust import add_trust_code


def register(sub) -> None:
    p = sub.add_parser(
        "export",
        help="export a run's network (genome, safetensors, TorchScript)",
        description="Write the network a run delivers into --out: genome.json, model.safetensors, "
        "model.torchscript.pt (loads with plain torch.jit.load, no pbtnas needed) and export.json. "
        "Load it back with pbtnas.load(OUT).",
    )
    p.add_argument("run_dir", help="the run directory")
    p.add_argument("--out", required=True, help="folder to write the export into")
    what = p.add_mutually_exclusive_group()
    what.add_argument(
        "--which",
        choices=("final", "best", "soup-uniform", "soup-greedy"),
        default="final",
        help="final: the run's delivered network (best so far while unfinished); best: best-ever; "
        "soup-uniform / soup-greedy: a model soup made by pbtnas soup",
    )
    what.add_argument("--member", type=int, metavar="UID", help="export the member of this uid (any whose checkpoint is in the run directory)")
    what.add_argument(
        "--pick",
        metavar="CONSTRAINTS",
        help="multi-objective runs: export the best feasible Pareto front member by the first objective that "
        'meets these constraints, e.g. "params<=50000" (several: comma-separated; "" for none)',
    )
    p.add_argument("--input-shape", help="input shape without batch dimension, e.g. 1,28,28 (only when it cannot be inferred from the task)")
    add_trust_code(p)
    p.set_defaults(handler=export_command)


def export_command(args) -> int:
    from pbtnas.analysis.export import export_run
    from pbtnas.cli.commands._files import share_tree
    from pbtnas.errors import PbtnasError

    shape = None
    if args.input_shape:
        try:
            shape = tuple(int(d) for d in args.input_shape.split(","))
        except ValueError:
            raise PbtnasError(f"--input-shape must be comma-separated integers, got {args.input_shape!r}") from None
        if any(d < 1 for d in shape):
            raise PbtnasError(f"--input-shape dimensions must be at least 1, got {args.input_shape!r}")
    _check_inputs(args)
    record = export_run(args.run_dir, args.out, which=args.which, input_shape=shape, trust_code=args.trust_code, member=args.member, pick=args.pick)
    share_tree(args.out)
    for note in record["notes"]:
        print(f"note: {note}", file=sys.stderr)
    member = record["member"]
    print(
        f"exported member {member.get('uid')} ({member.get('selection')}, {record['fitness_name']} "
        f"{member.get('fitness')}) of {args.run_dir} to {args.out}"
    )
    print(f"  load with pbtnas:   pbtnas.load({args.out!r})")
    print(f"  load without it:    torch.jit.load({args.out + '/model.torchscript.pt'!r})")
    return 0


def _check_inputs(args) -> None:
    """The run's config, manifest and (when it is what is exported) best network checkpoint, and
    the --out folder, before anything is written."""
    from pbtnas.cli.commands._checks import run_config, run_manifest, writable_folder
    from pbtnas.errors import CheckpointError
    from pbtnas.rundir.checks import BEST_FILE
    from pbtnas.rundir.store import RunStore, damaged_best

    store = RunStore(args.run_dir)
    run_config(store)
    manifest = run_manifest(store, required=False)
    summary = store.read_summary() or {}
    if args.member is not None or args.pick is not None:
        from pbtnas.analysis.export import choose_checkpoint

        choose_checkpoint(args.run_dir, member=args.member, pick=args.pick)  # one error naming what is available
    elif manifest is not None and (args.which == "best" or (args.which == "final" and not summary.get("finished"))):
        problem = damaged_best(store, manifest)
        if problem:
            raise CheckpointError(
                f"checkpoint {store.absolute(BEST_FILE)} (the best network) is damaged: {problem}; restore it, "
                f"or let 'pbtnas resume {args.run_dir} --skip-damaged' take the best of the surviving members"
            )
    writable_folder(args.out)
