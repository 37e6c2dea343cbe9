"""Small multi-objective runs for the tests of status, report, export and compare: a real tiny
classification search (population 4, about a second) with ``objectives: [fitness, params:min]``."""

OBJECTIVES = ["fitness", "params:min"]


def mo_config(seed=3, algorithm="pbtnas", constraints=(), steps=3, **overrides):
    from conftest import TINY_TASK

    from pbtnas.config import config_from_dict

    data = {
        "task": dict(TINY_TASK),
        "population": 4,
        "steps": steps,
        "seed": seed,
        "backend": "inprocess",
        "algorithm": algorithm,
        "objectives": list(OBJECTIVES),
        "constraints": list(constraints),
        **overrides,
    }
    return config_from_dict(data)


def make_mo_run(root, **kwargs):
    """Run a small multi-objective search into ``root``; return its summary."""
    from pbtnas.engine.runner import Runner

    return Runner(mo_config(**kwargs), root, progress=False).start().run()
