"""A user's gymnasium environment that renders ``rgb_array`` frames (drawn with numpy, no renderer
needed), registered when this module is imported (``task.env=rendered_envs:DrawnPointMass-v0``)."""

import gymnasium
import numpy as np
from custom_envs import PointMass


class DrawnPointMass(PointMass):
    """PointMass drawn as a white square on a dark 64 x 96 strip."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 25}

    def __init__(self, render_mode=None):
        super().__init__()
        self.render_mode = render_mode

    def render(self):
        frame = np.full((64, 96, 3), 30, dtype=np.uint8)
        x = int(np.clip((self.state[0] + 2) / 4, 0, 1) * 88)
        frame[28:36, x : x + 8] = 255
        return frame


gymnasium.register("DrawnPointMass-v0", entry_point=DrawnPointMass, max_episode_steps=50)
