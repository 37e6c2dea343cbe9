"""The GAN task through the Task API: real training, determinism, divergence, fitness, final
metrics, sample grids, the deployable generator, and bad options."""

import numpy as np
import pytest
import torch
from run_helpers import GAN_TINY

from pbtnas.errors import ConfigError, DataError, MemberDiverged
from pbtnas.tasks.gan.task import GanOptions, GanTask
from pbtnas.tasks.gan.training import ema_decay_at

TINY = {**GAN_TINY, "batches_per_step": 10, "n_critic": 5, "eval_samples": 100, "final_samples": 200}


@pytest.fixture(scope="module", autouse=True)
def cache_dir(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        path = tmp_path_factory.mktemp("pbtnas-cache")
        mp.setenv("PBTNAS_CACHE", str(path))
        yield path


def make(**kw):
    return GanTask(GanOptions(**{**TINY, **kw}))


def genome_of(task, seed=0):
    return task.space.random_genome(np.random.default_rng(seed))


def test_training_step_updates_every_model_and_keeps_the_schedule():
    task = make()
    g = genome_of(task)
    s0 = task.init_state(g, 0)
    s1, m = task.train_step(g, s0, 0, 11)
    assert s1.extra["d_iters"] == 10 and s1.extra["g_updates"] == 2 == m["g_updates"]
    s2, _ = task.train_step(g, s1, 1, 12)
    assert s2.extra["d_iters"] == 20 and s2.extra["g_updates"] == 4
    for key in ("gen", "gen_ema", "disc"):
        assert any(not torch.equal(s0.models[key][k], s2.models[key][k]) for k in s0.models[key]), key
    # The EMA is a separate, lagging copy; it has no optimizer state of its own.
    assert any(not torch.equal(s2.models["gen"][k], s2.models["gen_ema"][k]) for k in s2.models["gen"])
    assert set(s2.optim) == {"gen", "disc"}
    gen_params = {n for n, _ in task.build_generator(g).named_parameters()}
    assert s2.optim["gen"] and set(s2.optim["gen"]) <= gen_params
    assert all("exp_avg" in v and "exp_avg_sq" in v for v in s2.optim["disc"].values())


def test_same_seed_same_member():
    task = make(space="gan-hard", latent_dim=12)
    g = genome_of(task, 3)
    a, _ = task.train_step(g, task.init_state(g, 5), 0, 7)
    b, _ = task.train_step(g, task.init_state(g, 5), 0, 7)
    c, _ = task.train_step(g, task.init_state(g, 5), 0, 8)
    for key in a.models:
        assert all(torch.equal(a.models[key][k], b.models[key][k]) for k in a.models[key])
    assert any(not torch.equal(a.models["disc"][k], c.models["disc"][k]) for k in a.models["disc"])


def test_non_finite_losses_raise_member_diverged():
    task = make()
    g = genome_of(task)
    state = task.init_state(g, 0)
    name = next(k for k in state.models["gen"] if k.startswith("head.2"))
    state.models["gen"][name] = torch.full_like(state.models["gen"][name], float("nan"))
    with pytest.raises(MemberDiverged):
        task.train_step(g, state, 0, 0)
    # An EMA generator that draws NaN images gets the worst fitness instead of an exception.
    state.models["gen_ema"][name] = state.models["gen"][name]
    assert task.evaluate(g, state, 0) == float("-inf")


def test_ema_warmup_follows_early_then_settles_at_the_decay():
    assert ema_decay_at(0.999, 0, True) == pytest.approx(0.1)
    assert ema_decay_at(0.999, 10**6, True) == 0.999
    assert ema_decay_at(0.999, 0, False) == 0.999


def test_fitness_final_metrics_grid_and_deployable_generator(tmp_path):
    task = make(grid_size=4)
    g = genome_of(task)
    state, _ = task.train_step(g, task.init_state(g, 0), 0, 0)
    fit = task.evaluate(g, state, 1)
    assert np.isfinite(fit) and fit < 0
    assert task.evaluate(g, state, 1) == fit  # fixed seed -> same samples -> same fitness
    final = task.final_evaluate(g, state, 2)
    assert final["samples"] == 200 and final[task.final_metric_name] > 0 and final["clf_is"] >= 1.0
    path = task.sample_grid(g, state, str(tmp_path / "samples" / "grid.png"), 0)
    from PIL import Image

    with Image.open(path) as im:
        assert im.size == (4 * 34 + 2, 4 * 34 + 2) and im.mode == "L"
    gen = task.build_module(g, state)
    assert not gen.training and gen.latent_dim == 12
    z = torch.randn(3, gen.latent_dim)
    traced = torch.jit.trace(gen, z)
    assert torch.allclose(traced(z), gen(z), atol=1e-6) and gen(z).shape == (3, 1, 32, 32)


def test_stacked_mnist_reports_modes_and_kl():
    task = make(dataset="stacked-mnist", space="gan-hard")
    g = genome_of(task, 1)
    final = task.final_evaluate(g, task.init_state(g, 0), 0)
    assert 1 <= final["modes"] <= 1000 and final["kl_modes"] >= 0 and np.isfinite(final["fd_clf_test"])


@pytest.mark.parametrize(
    "bad, match",
    [
        (dict(space="nope"), "task.space"),
        (dict(space="gan-hard", latent_dim=10), "multiple of 3"),
        (dict(image_size=30), "multiple of 8"),
        (dict(dataset="imagenet"), "task.dataset"),
        (dict(batch_size=0), "batch_size"),
        (dict(lr=0.0), r"task.lr: must be a finite number > 0 \(got 0.0\)"),
        (dict(beta2=1.0), r"task.beta2: must be a number in \[0, 1\) \(got 1.0\)"),
        (dict(ema_decay=-0.1), "task.ema_decay: must be a number in"),
        (dict(classifier_epochs=0), r"task.classifier_epochs: must be at least 1 \(got 0\)"),
        (dict(split_seed=-1), "task.split_seed: must be at least 0"),
    ],
)
def test_bad_options_name_the_field(bad, match):
    with pytest.raises(ConfigError, match=match):
        make(**bad)


def test_folder_datasets_fail_before_a_run_starts_with_a_hint(tmp_path):
    # building the task (e.g. for 'pbtnas space') works without the data; prepare() checks it
    with pytest.raises(DataError, match="cifar-10-python.tar.gz"):
        make(dataset="cifar10", data_root=str(tmp_path)).prepare()
    with pytest.raises(DataError, match="stl10_binary.tar.gz"):
        make(dataset="stl10", data_root=str(tmp_path)).prepare()


@pytest.mark.slow
def test_a_member_really_learns_mnist():
    # Real training at the gan-mnist preset's width and schedule: FD-clf must fall well below
    # that of the untrained generator (about 460 -> under 300 in measured curves).
    task = make(
        width=16,
        disc_width=16,
        latent_dim=60,
        batch_size=32,
        batches_per_step=200,
        n_critic=2,
        eval_samples=500,
        classifier_epochs=4,
        classifier_width=32,
    )
    g = genome_of(task, 0)
    state = task.init_state(g, 0)
    start = -task.evaluate(g, state, 0)
    for step in range(2):
        state, _ = task.train_step(g, state, step, step)
    end = -task.evaluate(g, state, 0)
    assert end < 0.75 * start, (start, end)


@pytest.mark.parametrize("space", ["gan", "gan-hard"])
def test_channels_last_trains_the_same_model_up_to_rounding(space):
    # The option changes only the memory format: the same losses and weights up to float
    # rounding, and the stored state is in the default format so any member loads any state.
    kw = dict(space=space, latent_dim=12, dataset="stacked-mnist" if space == "gan-hard" else "mnist")
    plain, fast = make(channels_last=False, **kw), make(channels_last=True, **kw)
    g = genome_of(plain, 2)
    a, ma = plain.train_step(g, plain.init_state(g, 0), 0, 3)
    b, mb = fast.train_step(g, fast.init_state(g, 0), 0, 3)
    assert mb["g_updates"] == ma["g_updates"] and mb["d_loss"] == pytest.approx(ma["d_loss"], rel=1e-3)
    for key in a.models:
        for name, t in b.models[key].items():
            assert t.is_contiguous() and torch.allclose(t, a.models[key][name], atol=1e-3), (key, name)
    for entries in b.optim.values():
        assert all(v.is_contiguous() for e in entries.values() for v in e.values() if torch.is_tensor(v))
    c, _ = plain.train_step(g, b, 1, 4)  # a channels_last state trains on in the default format
    assert c.extra["d_iters"] == 20


def test_loss_values_and_divergence_without_per_batch_reads(monkeypatch):
    from pbtnas.tasks.gan import training

    task = make(batches_per_step=7)
    g = genome_of(task)
    state = task.init_state(g, 0)
    _, m = task.train_step(g, state, 0, 0)
    assert np.isfinite(m["d_loss"]) and np.isfinite(m["g_loss"])
    # Checked every CHECK_EVERY iterations and at the end: a NaN in the middle of a step still
    # raises, and the message names the iteration where the loss first became non-finite.
    monkeypatch.setattr(training, "CHECK_EVERY", 3)
    name = next(k for k in state.models["gen"] if k.startswith("head.2"))
    state.models["gen"][name] = torch.full_like(state.models["gen"][name], float("nan"))
    with pytest.raises(MemberDiverged, match="after 0 iterations"):
        task.train_step(g, state, 0, 0)
