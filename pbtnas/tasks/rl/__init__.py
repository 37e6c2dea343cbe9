"""Reinforcement learning task: a DrQ-v2-style agent on MuJoCo control (docs/algorithm.md §5)."""
