"""``pbtnas check``: the task contract of a preset or config, before any run."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "check",
        help="check that a task keeps the engine's rules (before a run)",
        description="Build a few architectures that together use every option of every gene and check "
        "the task contract: module paths, ownership, strict loading of mixed children, "
        "global random state, deterministic evaluation, one training step. Always runs in full; "
        "a pass is remembered (keyed by the task's files, options and the pbtnas version), so "
        "'pbtnas run' and 'resume' of the unchanged task skip their own check.",
    )
    p.add_argument(
        "source",
        metavar="PRESET|CONFIG.yaml|FILE.py:CLASS",
        help="a preset name, a YAML config file, or a task (file.py:Class, package.module:Class, a plugin name)",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key; task options as task.KEY=VALUE (repeatable)",
    )
    p.add_argument("--no-train", action="store_true", help="skip the training step (as a run's start does)")
    p.set_defaults(handler=check_command)


def check_command(args) -> int:
    from pbtnas.config import apply_overrides, config_from_dict, load_config_source
    from pbtnas.tasks import BUILTIN, build_task
    from pbtnas.tasks.check_memo import check_once
    from pbtnas.tasks.devices import prepare_to_train

    data = apply_overrides(load_config_source(args.source), args.overrides)
    config = config_from_dict(data)  # one error line for a config that a run would refuse
    from pbtnas.engine.memory import check_memory

    check_memory(config)  # a check trains one member: options that exhaust memory are refused
    task = build_task(config.task)
    prepare_to_train(config, task)
    # workers build the task in processes of their own: a user's task must evaluate the same there
    fresh = config.backend != "inprocess" and config.task["name"] not in BUILTIN
    # always in full; a pass is remembered, so that runs of this unchanged task skip their check
    outcome = check_once(task, seed=config.seed, evaluate=True, fresh_process=fresh, train=not args.no_train, recall=False)
    print(outcome.report)
    if outcome.remembered:
        print("  remembered: 'pbtnas run' and 'resume' of this unchanged task (files, options, pbtnas version) skip their check")
    return 0
