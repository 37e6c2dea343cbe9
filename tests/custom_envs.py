"""A user's own gymnasium environment, registered when this module is imported (the
``module:Name-vN`` form of ``task.env``)."""

import gymnasium
import numpy as np
from gymnasium import spaces


class PointMass(gymnasium.Env):
    """Push a point on a line towards 0: observation (position, velocity), one force in [-2, 2]."""

    def __init__(self):
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float32)
        self.action_space = spaces.Box(-2.0, 2.0, shape=(1,), dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.state = self.np_random.uniform(-1, 1, size=2).astype(np.float32)
        return self.state.copy(), {}

    def step(self, action):
        pos, vel = self.state
        vel = 0.9 * vel + 0.1 * float(np.clip(action[0], -2, 2))
        pos = pos + 0.1 * vel
        self.state = np.array([pos, vel], dtype=np.float32)
        return self.state.copy(), -abs(pos), False, False, {}


gymnasium.register("PointMass-v0", entry_point=PointMass, max_episode_steps=50)


class UnboundedPush(PointMass):
    """The same, with an action space that has no bounds."""

    def __init__(self):
        super().__init__()
        self.action_space = spaces.Box(-np.inf, np.inf, shape=(1,), dtype=np.float32)


gymnasium.register("UnboundedPush-v0", entry_point=UnboundedPush, max_episode_steps=50)


class DictPointMass(PointMass):
    """The same, observed as a dict of vectors (flattened by pbtnas)."""

    def __init__(self):
        super().__init__()
        box = spaces.Box(-np.inf, np.inf, shape=(1,), dtype=np.float32)
        self.observation_space = spaces.Dict({"position": box, "velocity": box})

    def _observe(self, obs):
        return {"position": obs[:1], "velocity": obs[1:]}

    def reset(self, *, seed=None, options=None):
        obs, info = super().reset(seed=seed, options=options)
        return self._observe(obs), info

    def step(self, action):
        obs, *rest = super().step(action)
        return (self._observe(obs), *rest)


gymnasium.register("DictPointMass-v0", entry_point=DictPointMass, max_episode_steps=50)
