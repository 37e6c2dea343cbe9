"""Reinforcement learning task: a DrQ-v2-style agent on MuJoCo control (SPEC §4.3)."""
