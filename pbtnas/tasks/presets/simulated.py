"""Simulated-training preset: architecture-dependent sleeps for scheduler and backend benchmarks."""

PRESETS = {
    "simulated": {
        "description": "simulated training (sleeps 0.05-0.35 s per step by architecture, tiny real MLP); "
        "for trying backends, async mode and fault tolerance in seconds",
        "task": {"name": "simulated", "layers": 4, "width": 8, "step_seconds": 0.2, "unevenness": 1.5},
        "algorithm": "pbtnas",
        "population": 8,
        "steps": 6,
    },
}
