"""One seed, many independent streams: every random decision of a run derives from
``numpy.random.SeedSequence(seed, spawn_key=(purpose, ...))``, so a stream depends only on the
master seed and its key (never on what ran before) and a resumed run draws the same numbers.
"""

from __future__ import annotations

import numpy as np

INIT, TRAIN, EVAL, EXPLOIT, FINAL, MEMBER_INIT, SAMPLES = range(7)


def rng_for(seed: int, purpose: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(purpose, *keys)))


def int_seed(seed: int, purpose: int, *keys: int) -> int:
    """A 31-bit integer seed for torch.Generator / environments."""
    state = np.random.SeedSequence(seed, spawn_key=(purpose, *keys)).generate_state(1)[0]
    return int(state) & 0x7FFFFFFF
