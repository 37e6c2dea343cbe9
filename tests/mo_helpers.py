"""A small multi-objective run directory for the tests of status, report, export and compare.

It is a real tiny classification run (population 4, 3 steps, about a second) whose journal and
summary are then given what the multi-objective contract (issue 23) adds: ``objectives`` on every
``member_trained`` record (fitness and the member's trainable parameter count) and the summary's
``objectives``/``constraints``/``pareto_front``/``hypervolume``/``hypervolume_reference``. The
front and the hypervolume are computed from those values with ``pbtnas.search.objectives``; the
front holds the members of the last step (their checkpoints are still in the run directory).
"""

import json

from pbtnas.rundir.store import RunStore
from pbtnas.search.objectives import hypervolume, pareto_front, parse_objectives

OBJECTIVES = ["fitness", "params:min"]


def param_count(task, genome) -> int:
    module = task.build_module(genome, task.init_state(genome, 0))
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def make_mo_run(root, seed=3, algorithm="pbtnas", constraints=()):
    from conftest import TINY_TASK

    from pbtnas.config import config_from_dict
    from pbtnas.engine.runner import Runner
    from pbtnas.tasks import build_task

    config = config_from_dict({"task": dict(TINY_TASK), "population": 4, "steps": 3, "seed": seed, "backend": "inprocess", "algorithm": algorithm})
    Runner(config, root, progress=False).start().run()
    return add_objectives(root, build_task(config.task), constraints)


def add_objectives(root, task, constraints=()):
    """Give a finished single-objective run the multi-objective records and summary keys."""
    store = RunStore(root)
    objectives = parse_objectives(OBJECTIVES)
    genomes, lines, seen = {}, [], []
    for line in store.journal_path.read_text().splitlines():
        event = json.loads(line)
        if event.get("event") in ("member_created", "child_created"):
            genomes[event["uid"]] = event["genome"]
        if event.get("event") == "member_trained":
            values = {"fitness": event["fitness"], "params": float(param_count(task, genomes[event["uid"]]))}
            event["objectives"] = values
            seen.append((event["step"], event["slot"], event["uid"], values))
        lines.append(json.dumps(event))
    store.journal_path.write_text("\n".join(lines) + "\n")
    summary = json.loads((store.root / "summary.json").read_text())
    last = max(step for step, *_ in seen)
    final = [(step, slot, uid, v) for step, slot, uid, v in seen if step == last]
    reference = {"fitness": 0.0, "params": max(v["params"] for *_, v in seen) * 1.1}
    members = []
    for i in pareto_front([v for *_, v in final], objectives):
        step, slot, uid, values = final[i]
        members.append(
            {
                "uid": uid,
                "slot": slot,
                "step": step,
                "genome": genomes[uid],
                "objectives": values,
                "final_objectives": {**values, "fitness": values["fitness"] + 0.01},
                "feasible": all(_meets(values, c) for c in constraints),
                "checkpoint": store.relative(store.member_path(step, uid)),
            }
        )
    curve = []
    for step in sorted({s for s, *_ in seen}):
        upto = [v for s, *_, v in seen if s <= step]
        front = [upto[i] for i in pareto_front(upto, objectives)]
        curve.append({"step": step, "value": hypervolume(front, objectives, reference)})
    summary.update(
        objectives=[{"name": o.name, "direction": o.direction} for o in objectives],
        constraints=list(constraints),
        pareto_front=members,
        hypervolume=curve,
        hypervolume_reference=reference,
    )
    (store.root / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _meets(values, constraint):
    from pbtnas.search.objectives import parse_constraints

    (c,) = parse_constraints([constraint])
    return c.violation(values) == 0.0
