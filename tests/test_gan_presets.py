"""The GAN presets validate, and the paper-scale ones build at tiny width and train one
iteration on synthetic data written in CIFAR-10's and STL-10's own formats."""

import numpy as np
import pytest
import torch
from test_gan_data import write_cifar, write_stl

from pbtnas.config import config_from_dict
from pbtnas.tasks.base import parse_options
from pbtnas.tasks.gan.task import GanOptions, GanTask
from pbtnas.tasks.presets import get_preset

NAMES = ["gan-mnist", "gan-mnist-small", "gan-hard-stacked-mnist", "gan-cifar10", "gan-stl10"]


@pytest.mark.parametrize("name", NAMES)
def test_preset_is_a_valid_config(name):
    config = config_from_dict(get_preset(name))
    options = parse_options(GanOptions, {k: v for k, v in config.task.items() if k != "name"})
    assert config.task["name"] == "gan" and options.lr == 2e-4
    # CPU presets update G every 2nd batch to fit their budget; the paper presets every 5th.
    assert options.n_critic == (5 if name in ("gan-cifar10", "gan-stl10") else 2)
    assert (options.beta1, options.beta2, options.adam_eps, options.ema_decay) == (0.0, 0.9, 1e-4, 0.999)


@pytest.mark.parametrize("name, writer, shape", [("gan-cifar10", write_cifar, (3, 32, 32)), ("gan-stl10", write_stl, (3, 48, 48))])
def test_paper_presets_build_tiny_and_train_on_synthetic_data(name, writer, shape, tmp_path):
    writer(str(tmp_path))
    task_cfg = {k: v for k, v in get_preset(name)["task"].items() if k != "name"}
    assert task_cfg["width"] == 256 and task_cfg["disc_width"] == 128 and task_cfg["latent_dim"] == 120
    task_cfg.update(data_root=str(tmp_path), width=8, disc_width=8, batch_size=4, batches_per_step=1, n_critic=1)
    task = GanTask(parse_options(GanOptions, task_cfg))
    genome = task.space.random_genome(np.random.default_rng(0))
    state, metrics = task.train_step(genome, task.init_state(genome, 0), 0, 0)
    assert state.extra["d_iters"] == 1 and state.extra["g_updates"] == 1 and np.isfinite(metrics["g_loss"])
    assert task.build_module(genome, state)(torch.randn(2, 120)).shape == (2, *shape)
