"""``pbtnas run`` and ``pbtnas resume``."""

from __future__ import annotations

import json
import os
import shutil
import sys

from pbtnas.cli.commands._files import share_run
from pbtnas.cli.commands._options import RESUME_FLAGS, add_budget_options, add_config_flags, config_from_args, default_run_dir
from pbtnas.cli.commands._trust import add_trust_code


def register(sub) -> None:
    p = sub.add_parser("run", help="start a search", description="Start a search from a preset or a YAML config.")
    add_budget_options(p)
    p.add_argument("--out", help="run directory (default: runs/<preset>-<algorithm>-s<seed>-<time>)")
    p.add_argument("--quiet", action="store_true", help="no progress lines (nor the line on the task check)")
    p.set_defaults(handler=run_command)

    r = sub.add_parser("resume", help="continue a run from its last finished step")
    r.add_argument("run_dir", help="the run directory")
    add_config_flags(r, RESUME_FLAGS, RESUME_FLAGS)
    r.add_argument("--device", help="change the torch device members train on (sets task.device)")
    r.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change what may safely change: steps, workers, backend, Ray options, loggers, "
        "task.device, ... (the search itself - population, seed, algorithm, task options - "
        "is refused with the reason)",
    )
    r.add_argument(
        "--skip-damaged",
        action="store_true",
        help="continue even if a checkpoint the run needs is damaged or missing: that member "
        "restarts from fresh weights of its genome (journaled as checkpoint_skipped)",
    )
    r.add_argument("--quiet", action="store_true", help="no progress lines (nor the line on the task check)")
    add_trust_code(r)
    r.set_defaults(handler=resume_command)


def run_command(args) -> int:
    from pbtnas.cli.commands._checks import writable_folder
    from pbtnas.engine.runner import make_runner  # here, not above: 'pbtnas status' must not import torch

    config = config_from_args(args)
    out = args.out or default_run_dir(args.source, config)
    args.out = out  # for the resume hint of an error or an interrupt
    writable_folder(out)
    existed = os.path.exists(out)
    runner = make_runner(config, out, progress=not args.quiet, remember_check=True)
    try:
        runner.start()
    except BaseException:
        _remove_if_empty_start(runner, out, existed)
        raise
    _announce_check(runner, args.quiet)
    share_run(out)
    print(f"run directory: {out}", file=sys.stderr)
    _announce_loggers(runner, out)
    summary = _run_to_end(runner)
    print(json.dumps(_brief(summary), indent=2))
    return 0


def resume_command(args) -> int:
    from pbtnas.cli.commands._checks import run_config
    from pbtnas.cli.commands._resume import requested_changes, resume_lines
    from pbtnas.engine.runner import resume_runner
    from pbtnas.rundir.store import RunStore

    run_config(RunStore(args.run_dir))  # a damaged config.yaml: one line naming it
    # what may change, the checks before training, config.yaml and the journal: the library's
    # one resume, as pbtnas.resume() does it
    runner = resume_runner(
        args.run_dir,
        overrides=requested_changes(args),
        progress=not args.quiet,
        skip_damaged=getattr(args, "skip_damaged", False),
        remember_check=True,
        trust_code=args.trust_code,
    )
    _announce_check(runner, args.quiet)  # a resume checks the task only when it redoes a start cut short
    for line in resume_lines(runner, args.run_dir):
        print(line, file=sys.stderr)
    _announce_loggers(runner, args.run_dir)  # also for a finished run: where its logs are
    summary = _run_to_end(runner)
    print(json.dumps(_brief(summary), indent=2))
    return 0


def _remove_if_empty_start(runner, out: str, existed: bool) -> None:
    """A start that failed (a full disk, a task that does not build) leaves no half-made run
    directory behind: a folder this command created and that holds no work is removed."""
    store = runner.store
    store.unlock()
    if existed or not store.root.is_dir() or not store.holds_no_work():
        return
    shutil.rmtree(store.root, ignore_errors=True)


def _run_to_end(runner) -> dict:
    """Run, closing the live progress bar however the run ends (so an error or 'interrupted'
    line starts on a line of its own)."""
    from pbtnas.engine.divergence import divergence_warning

    try:
        summary = runner.run()
    finally:
        share_run(runner.store.root)
        close = getattr(getattr(runner, "progress", None), "close", None)
        if close is not None:
            close()
    warning = divergence_warning(summary)  # a run mostly diverged still ends with exit 0: say it once
    if warning:
        print(warning, file=sys.stderr)
    return summary


def _announce_check(runner, quiet: bool) -> None:
    """One line on the start's task check of a user's task: what it cost and that it is now
    remembered, or that it was skipped because this exact task passed it before (not with
    ``--quiet``, whose output scripts read)."""
    from pbtnas.tasks.check_memo import outcome_line

    outcome = getattr(runner, "check_outcome", None)
    if quiet:
        return
    line = outcome_line(outcome, runner.config.task["name"]) if outcome is not None else None
    if line:
        print(line, file=sys.stderr)


def _announce_loggers(runner, out) -> None:
    """Say once, at the start, where TensorBoard logs go and how to look at them."""
    for observer in runner.observers:
        log_dir = getattr(observer, "log_dir", None)
        if getattr(observer, "name", "") == "tensorboard" and log_dir is not None:
            print(f"TensorBoard: tensorboard --logdir {log_dir}", file=sys.stderr)
            return


def _brief(summary: dict) -> dict:
    keys = ("algorithm", "task", "seed", "steps_done", "final_selection", "best_fitness", "final_metric_name", "final_metric", "wall_time_s")
    return {k: summary.get(k) for k in keys}
