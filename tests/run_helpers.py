"""Helpers shared by the tests: observers that simulate a crash, the journal's fitness trace, quick
CLI arguments, and the tiny GAN and RL options that keep a real member to a fraction of a second."""

import pytest

from pbtnas.rundir.store import RunStore


class StopAfter:
    """Observer that simulates a crash right after a step was committed."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, step, runner):
        if step == self.step:
            raise KeyboardInterrupt


class StopAfterResults:
    """Observer that simulates a driver crash after ``n`` member results."""

    def __init__(self, n):
        self.n, self.seen = n, 0

    def on_member_result(self, step, member, result):
        self.seen += 1
        if self.seen == self.n:
            raise KeyboardInterrupt


def fitness_trace(run_dir):
    """(step, slot, uid, fitness) of every valid member_trained event, in journal order."""
    return [(e["step"], e["slot"], e["uid"], e["fitness"]) for e in RunStore(run_dir).iter_events("member_trained")]


# a tiny, fast simulated search for CLI tests: in-process, no loggers, quiet
QUICK = [
    "--population",
    "4",
    "--steps",
    "3",
    "--backend",
    "inprocess",
    "--seed",
    "5",
    "--quiet",
    "--set",
    "task.step_seconds=0",
    "--set",
    "loggers=none",
]


def trained_for(task, genome, seed, steps, distinct_shadow=False):
    """A member of ``genome`` trained ``steps`` steps from ``seed`` (step ``s`` on seed ``seed * 100 + s``);
    with ``distinct_shadow`` its ``ema`` shadow is half the model, so that shadow handling is observable."""
    state = task.init_state(genome, seed)
    for s in range(steps):
        state, _ = task.train_step(genome, state, s, seed * 100 + s)
    if distinct_shadow:
        state.models["ema"] = {k: (v * 0.5 if v.is_floating_point() else v.clone()) for k, v in state.models["model"].items()}
    return state


def crashed_and_resumed(make_config, tmp_path, step=1):
    """Runs ``make_config()`` whole in ``tmp_path/full``, and in ``tmp_path/cut`` crashed after
    ``step`` and resumed; checks both journals hold the same fitness trace and returns both summaries."""
    from pbtnas.engine.runner import Runner

    full = Runner(make_config(), tmp_path / "full", progress=False).start().run()
    cut = Runner(make_config(), tmp_path / "cut", progress=False)
    cut.observers.append(StopAfter(step))
    with pytest.raises(KeyboardInterrupt):
        cut.start().run()
    resumed = Runner.resume(tmp_path / "cut", progress=False).run()
    assert fitness_trace(tmp_path / "cut") == fitness_trace(tmp_path / "full")
    return full, resumed


#: the GAN's networks at their smallest useful size
GAN_NETS = dict(width=8, disc_width=8, latent_dim=12)
#: GAN options (without ``name``) for a whole member: training steps, fitness and final metrics
GAN_TINY = dict(
    **GAN_NETS,
    batch_size=8,
    batches_per_step=5,
    eval_samples=64,
    final_samples=64,
    classifier_epochs=1,
    classifier_width=8,
    stacked_size=500,
)


def tiny_gan_task(space="gan", **options):
    """A GAN task of tiny networks and batches of 4, for tests that build, mix or train genomes;
    ``options`` override (or add to) those."""
    from pbtnas.tasks.gan.task import GanOptions, GanTask

    return GanTask(GanOptions(**{"space": space, **GAN_NETS, "batch_size": 4, **options}))


#: RL options (without ``name``) for a state-based agent on cheetah-run, a step of 120 frames
RL_TINY = dict(
    env="cheetah-run",
    hidden_dim=16,
    batch_size=16,
    frames_per_step=120,
    seed_frames=60,
    episode_frames=100,
    buffer_capacity=500,
    eval_episodes=1,
)

#: ``--set`` arguments that make an RL run from the command line tiny (a step of 60 frames)
RL_TINY_SETS = [
    "--set",
    "task.frames_per_step=60",
    "--set",
    "task.seed_frames=30",
    "--set",
    "task.episode_frames=30",
    "--set",
    "task.hidden_dim=16",
    "--set",
    "task.batch_size=8",
    "--set",
    "task.eval_episodes=1",
]
