"""benchmarks/member_trajectories.py: every member's fitness per step and each child's origin,
read from a real (tiny) run's journal."""

import importlib.util
import re
from pathlib import Path

from pbtnas.engine.runner import Runner
from pbtnas.rundir.store import RunStore

ROOT = Path(__file__).resolve().parents[1]


def test_trajectories_show_every_member_step_and_every_child(tiny_config, tmp_path):
    spec = importlib.util.spec_from_file_location("member_trajectories", ROOT / "benchmarks" / "member_trajectories.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    Runner(tiny_config(steps=3), tmp_path / "run", progress=False).start().run()
    text = module.trajectories(tmp_path / "run")
    store = RunStore(tmp_path / "run")
    for event in store.iter_events("member_trained"):
        line = next(line for line in text.splitlines() if re.match(rf"\s+uid\s+{event['uid']}\s", line))
        assert f"{event['step']}:{event['fitness']:.4g}" in line
    for child in store.iter_events("child_created"):
        line = next(line for line in text.splitlines() if re.match(rf"\s+uid\s+{child['uid']}\s", line))
        assert f"child of {child['primary']}" in line and f"replaced {child['replaced_uid']} after step {child['step']}" in line
    best = [(e["step"], e["uid"]) for e in store.iter_events("best_updated")]
    assert text.splitlines()[-1].endswith(str(best))
