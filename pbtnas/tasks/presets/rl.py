"""Reinforcement-learning presets (docs/algorithm.md §5, docs/rl.md).

``rl-cheetah`` and ``rl-walker`` learn from states at CPU scale: a population of 8 on 2 cores
in under an hour (see docs/rl.md for the measured speeds and returns). ``rl-quadruped-pixels``
is the paper's setting (84x84 pixels, frame stack 3, action repeat 2, hidden width 1024,
population 12) and needs a GPU and EGL rendering.
"""

from __future__ import annotations

# Shared by the CPU presets: a small network (hidden 128, batch 128) so one update costs a few
# milliseconds on one core, a larger learning rate than DrQ-v2's 1e-4 because the budget is
# short, and the exploration std falling over the whole budget.
_CPU_STATES = {
    "name": "rl",
    "pixels": False,
    "action_repeat": 2,
    "hidden_dim": 128,
    "batch_size": 128,
    "lr": 5e-4,
    "seed_frames": 2000,
    "frames_per_step": 8000,
    "std_schedule_frames": 80_000,
    "buffer_capacity": 100_000,
    "eval_episodes": 10,
    "final_eval_episodes": 30,
}

PRESETS: dict[str, dict] = {
    "rl-cheetah": {
        "description": "DrQ-v2-style agent from states on dm_control cheetah-run, 28 genes; under an hour on 2 cores",
        "task": {**_CPU_STATES, "env": "cheetah-run"},
        "population": 8,
        "steps": 10,
        "final_selection": "best-last",
    },
    "rl-walker": {
        "description": "DrQ-v2-style agent from states on dm_control walker-walk, 28 genes; about an hour on 2 cores",
        "task": {**_CPU_STATES, "env": "walker-walk"},
        "population": 8,
        "steps": 10,
        "final_selection": "best-last",
    },
    "rl-quadruped-pixels": {
        "description": "paper setup: quadruped-run from 84x84 pixels, 36 genes, hidden 1024, population 12 (GPU, MUJOCO_GL=egl)",
        "task": {
            "name": "rl",
            "env": "quadruped-run",
            "pixels": True,
            "image_size": 84,
            "frame_stack": 3,
            "action_repeat": 2,
            "hidden_dim": 1024,
            "encoder_channels": 32,
            "batch_size": 256,
            "lr": 1e-4,
            "nstep": 3,
            "seed_frames": 4000,
            "std_schedule_frames": 500_000,
            "frames_per_step": 100_000,
            "buffer_capacity": 100_000,
            "eval_episodes": 10,
            "final_eval_episodes": 100,
            "device": "cuda",
        },
        "population": 12,
        "steps": 20,
        "final_selection": "best-last",
        "gpus_per_member": 0.5,
    },
}
