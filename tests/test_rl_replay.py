"""The replay buffer: n-step returns, episode boundaries, wrap-around, frame stacks, round trip."""

import numpy as np
import pytest
import torch

from pbtnas.tasks.rl.replay import ReplayBuffer


def fill(buf, episodes, length, terminal_last=False, obs_dim=2):
    """Episodes whose observation encodes (episode, t) and reward = 10*episode + t."""
    for e in range(episodes):
        buf.add_first(np.full(obs_dim, e * 1000.0))
        for t in range(1, length + 1):
            disc = 0.0 if (terminal_last and t == length) else 1.0
            buf.add(np.full(buf.action.shape[1], t), 10.0 * e + t, disc, np.full(obs_dim, e * 1000.0 + t))


def brute_force(obs_start, nstep, gamma, length, terminal_last):
    e, t0 = divmod(int(obs_start), 1000)
    reward, disc = 0.0, 1.0
    for j in range(1, nstep + 1):
        t = t0 + j
        reward += disc * (10.0 * e + t)
        d = 0.0 if (terminal_last and t == length) else 1.0
        disc *= d * gamma
    return reward, disc, e * 1000.0 + t0 + nstep, t0 + 1


@pytest.mark.parametrize("terminal_last", [False, True])
def test_nstep_matches_brute_force_and_never_crosses_episodes(terminal_last):
    buf = ReplayBuffer(1000, (2,), torch.float32, 1)
    fill(buf, episodes=4, length=7, terminal_last=terminal_last)
    obs, action, reward, discount, next_obs = buf.sample(500, 3, 0.9, np.random.default_rng(0))
    for i in range(500):
        r, d, nxt, a = brute_force(obs[i, 0], 3, 0.9, 7, terminal_last)
        assert reward[i, 0].item() == pytest.approx(r, rel=1e-5)
        assert discount[i, 0].item() == pytest.approx(d, rel=1e-5)
        assert next_obs[i, 0].item() == nxt
        assert action[i, 0].item() == a
    # starts need 3 more steps of the same episode: t0 in 0..4 of every episode
    assert len(buf.valid_starts(3)) == 4 * 5


def test_wraparound_keeps_only_whole_transitions():
    buf = ReplayBuffer(20, (2,), torch.float32, 1)
    fill(buf, episodes=5, length=9)  # 50 entries through 20 slots
    assert len(buf) == 20
    starts = buf.valid_starts(2)
    obs, _, reward, _, next_obs = buf.sample(200, 2, 1.0, np.random.default_rng(1))
    assert torch.all(next_obs[:, 0] - obs[:, 0] == 2)  # same episode, two steps later
    # the oldest surviving entries belong to episodes 3 and 4 only
    assert torch.all(obs[:, 0] >= 3000)
    assert len(starts) > 0


def test_frame_stack_repeats_first_frame_at_episode_start():
    buf = ReplayBuffer(100, (1, 2, 2), torch.uint8, 1, frame_stack=3)
    for e in range(2):
        buf.add_first(np.full((1, 2, 2), 10 * e, dtype=np.uint8))
        for t in range(1, 6):
            buf.add([0.0], 0.0, 1.0, np.full((1, 2, 2), 10 * e + t, dtype=np.uint8))
    stacked = buf.stacked(np.array([0, 1, 4, 6, 8]))
    assert stacked.shape == (5, 3, 2, 2)
    assert stacked[:, :, 0, 0].tolist() == [[0, 0, 0], [0, 0, 1], [2, 3, 4], [10, 10, 10], [10, 11, 12]]


def test_state_round_trip_continues_identically():
    buf = ReplayBuffer(50, (2,), torch.float32, 1)
    fill(buf, episodes=3, length=6)
    saved = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in buf.state().items()}
    copy = ReplayBuffer.from_state(saved)
    for b in (buf, copy):
        b.add([1.0], 5.0, 1.0, np.zeros(2))
    a = buf.sample(64, 3, 0.99, np.random.default_rng(3))
    b = copy.sample(64, 3, 0.99, np.random.default_rng(3))
    for x, y in zip(a, b):
        assert torch.equal(x, y)


def test_add_before_first_is_an_error():
    buf = ReplayBuffer(10, (2,), torch.float32, 1)
    with pytest.raises(RuntimeError):
        buf.add([0.0], 0.0, 1.0, np.zeros(2))


def test_can_sample_once_a_whole_nstep_transition_exists():
    buf = ReplayBuffer(10, (2,), torch.float32, 1)
    assert not buf.can_sample(3)
    buf.add_first(np.zeros(2))
    for _ in range(2):
        buf.add([0.0], 1.0, 1.0, np.zeros(2))
    assert not buf.can_sample(3)
    buf.add([0.0], 1.0, 1.0, np.zeros(2))
    assert buf.can_sample(3)
