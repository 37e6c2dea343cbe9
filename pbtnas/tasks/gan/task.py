"""The GAN task: search the generator (and, in "gan-hard", the discriminator) of an image GAN.

Models of a member: ``gen`` (trained generator), ``gen_ema`` (its EMA, the one evaluated and
exported; a shadow of ``gen``) and ``disc``. Optimizer state is kept per parameter name under
``gen`` and ``disc``. Fitness is ``-FD-clf`` of the EMA generator against the training split;
the final report uses more samples and the test split (docs/algorithm.md §5, docs/gan.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn as nn

from pbtnas.errors import ConfigError, DataError
from pbtnas.search.space import Genome
from pbtnas.search.state import MemberState, capture_optimizer, load_weights, restore_optimizer, state_dict_cpu
from pbtnas.tasks.base import ReportHints, Task, doc
from pbtnas.tasks.data import DATASETS, ImageSet, check_available, data_headline, image_shape, load_images
from pbtnas.tasks.data.npz import LAYOUT_DOC, PIXEL_MAX_DOC
from pbtnas.tasks.gan.discriminator import FixedDiscriminator, SearchDiscriminator
from pbtnas.tasks.gan.generator import Generator
from pbtnas.tasks.gan.space import SPACES, build_space, gene_modules
from pbtnas.tasks.gan.training import TrainSettings, train_gan
from pbtnas.tasks.memory import F32, MemoryNeed

if TYPE_CHECKING:
    from pbtnas.tasks.gan.evaluation import GanMetrics


@dataclass
class GanOptions:
    """Options of the GAN task (config section ``task``)."""

    space: str = doc("search space: 'gan' (21 generator genes) or 'gan-hard' (72 genes)", "gan", choices=SPACES)
    dataset: str = doc(
        "mnist, stacked-mnist, animal-shape-mnist (offline wheels), cifar10 or stl10 (from data_root), or npz (your own images from data_path)",
        "mnist",
    )
    data_root: str = doc("folder holding cifar-10-batches-py/ or stl10_binary/ (cifar10, stl10 only)", "")
    data_path: str = doc(
        "with dataset 'npz': a .npz file holding images X (N,H,W), (N,C,H,W) or (N,H,W,C), 0..255 or floats in [0, 1], "
        "1 or 3 channels, and optionally labels y (N,) for the FD-clf classifier",
        "",
    )
    layout: str = doc(LAYOUT_DOC, "auto")
    pixel_max: float = doc(PIXEL_MAX_DOC, 0.0)
    channels: int = doc(
        "with dataset 'npz': image channels, 1 or 3 (0: the file's; recorded by export so the generator loads without the file)", 0, ge=0
    )
    image_size: int = doc("image resolution, a multiple of 8 (0: the data set's own: 32, 48 for stl10, an npz file's side)", 0, ge=0)
    width: int = doc("generator channels (paper: 256)", 32, ge=1)
    disc_width: int = doc("discriminator channels (paper: 128)", 32, ge=1)
    latent_dim: int = doc("size of z (paper: 120; a multiple of 3 for gan-hard)", 60, ge=1)
    batch_size: int = doc("discriminator batch size (the generator's is twice this)", 32, ge=1)
    batches_per_step: int = doc("discriminator iterations per PBT step", 200, ge=1)
    n_critic: int = doc("discriminator iterations per generator update", 5, ge=1)
    lr: float = doc("Adam learning rate of both networks (constant)", 2e-4, gt=0)
    beta1: float = doc("Adam beta1", 0.0, ge=0, lt=1)
    beta2: float = doc("Adam beta2", 0.9, ge=0, lt=1)
    adam_eps: float = doc("Adam epsilon", 1e-4, gt=0)
    ema_decay: float = doc("decay of the EMA generator per generator update", 0.999, ge=0, lt=1)
    ema_warmup: bool = doc("use decay min(ema_decay, (1+n)/(10+n)) after n updates (needed for short budgets)", True)
    eval_samples: int = doc("generated samples for the fitness (FD-clf against the training split)", 1000, ge=2)
    final_samples: int = doc("generated samples for the final report (against the test split)", 5000, ge=2)
    test_fraction: float = doc("fraction of the wheel-based sets held out as the test split", 0.2, gt=0, lt=1)
    split_seed: int = doc("seed of the fixed train/test split and of Stacked-MNIST's digit triples", 12345, ge=0)
    stacked_size: int = doc("Stacked-MNIST training images (the test split has a fifth of this)", 20000, ge=1)
    classifier_epochs: int = doc("training epochs of the FD-clf classifier (cached)", 4, ge=1)
    classifier_width: int = doc("channels of the FD-clf classifier's first layer", 32, ge=1)
    inception_path: str = doc("TorchScript Inception weights (inception-2015-12-05.pt) for real FID/IS; '' = off", "")
    grid_size: int = doc("rows and columns of the sample grid written for the best member", 8, ge=1)
    device: str = doc("torch device members train on (cpu, cuda, cuda:1, ...)", "cpu")
    channels_last: bool = doc(
        "train in the channels_last memory format: about 1.4x faster convolutions on CPU; false trains in the "
        "contiguous format, which sums convolutions in another order (results of runs made before this "
        "was the default are reproduced with false)",
        True,
    )


class GanTask(Task):
    """Search an image GAN (see module docstring)."""

    Options = GanOptions
    shadow_models = {"gen_ema": "gen"}
    fitness_name = "-fd_clf"
    final_metric_name = "fd_clf_test"
    final_metric_higher_is_better = False  # a Fréchet distance; the fitness is its negation
    default_final_selection = "best-ever"

    def __init__(self, options: GanOptions):
        super().__init__(options)
        o = options  # each option's own range: its declaration in GanOptions
        if o.dataset == "npz" and o.channels and o.image_size:
            # the shape is known (an exported generator): no need for the data file
            self.channels, self.resolution = o.channels, o.image_size
        else:
            try:
                self.channels, self.resolution = image_shape(o.dataset, o.image_size, o.data_path, o.layout, o.pixel_max)
            except DataError:
                if o.dataset == "npz":  # the file's own problem, named by the message
                    raise
                raise ConfigError(f"task.dataset: unknown dataset {o.dataset!r}; known: {sorted(DATASETS)}") from None
            except Exception as exc:
                raise ConfigError(f"task.dataset: {exc}") from None
        if o.channels and o.channels != self.channels:
            raise ConfigError(f"task.channels={o.channels}, but the images of task.dataset={o.dataset!r} have {self.channels} channel(s)")
        if self.resolution % 8 or self.resolution < 8:
            raise ConfigError(f"task.image_size must be a positive multiple of 8 (3 cells double 4 -> 32), got {self.resolution}")
        if o.space == "gan-hard" and o.latent_dim % 3:
            raise ConfigError(f"task.latent_dim must be a multiple of 3 for gan-hard (projections read thirds of z), got {o.latent_dim}")
        self.space = build_space(o.space)
        self.hard = o.space == "gan-hard"
        self._splits: dict[str, ImageSet] = {}
        self._metrics: GanMetrics | None = None

    @classmethod
    def memory_needs(cls, options: GanOptions) -> list[MemoryNeed]:
        o = options
        default_channels, default_size, _ = DATASETS.get(o.dataset, (0, 0, ""))
        # an npz file's own shape is not read here (no data may be touched): 1 channel of 8x8 is the bound
        c, side = o.channels or default_channels or 1, o.image_size or default_size or 8
        image = F32 * c * side * side
        shape = f"{c}x{side}x{side}"
        sized = ("image_size",) if o.image_size else ()  # named only when it was set
        needs = [
            # the generator's update draws twice the discriminator's batch
            MemoryNeed(("batch_size", *sized), 2 * o.batch_size * image, f"a generator batch of {2 * o.batch_size} {shape} images"),
            # samples are generated in chunks and then joined: both are held at once
            MemoryNeed(("eval_samples", *sized), 2 * o.eval_samples * image, f"the {shape} images generated for each fitness"),
            MemoryNeed(("final_samples", *sized), 2 * o.final_samples * image, f"the {shape} images generated for the final metric"),
            MemoryNeed(("grid_size", *sized), o.grid_size**2 * image, f"the sample grid of {shape} images"),
        ]
        if o.dataset == "stacked-mnist":
            needs.append(MemoryNeed(("stacked_size",), o.stacked_size * 3 * 32 * 32, "the stacked 3x32x32 training images"))
        return needs

    def prepare(self) -> None:
        """In the driver, before any member trains: check the data folder (a missing one fails
        with its download hint) and train or load the cached FD-clf classifier once, so workers
        do not all train it at the same time."""
        o = self.options
        check_available(o.dataset, o.data_root, o.data_path, o.layout, o.pixel_max)
        if self.options.dataset == "npz":  # a small file of one's own: both splits must hold images
            for name in ("train", "test"):
                if len(self.split(name)) < 2:
                    raise DataError(
                        f"the {name} split of {self.options.data_path} holds {len(self.split(name))} image(s); "
                        f"FD-clf needs at least 2 in each (more images, or another task.test_fraction than {self.options.test_fraction})"
                    )
        _ = self.metrics  # builds the FD classifier and reference statistics once, here in the driver

    # -- data and metrics (lazy: a task is built in every worker process) --------------------
    def split(self, name: str) -> ImageSet:
        if name not in self._splits:
            o = self.options
            self._splits[name] = load_images(
                o.dataset,
                name,
                data_root=o.data_root,
                image_size=o.image_size,
                test_fraction=o.test_fraction,
                split_seed=o.split_seed,
                stacked_size=o.stacked_size,
                data_path=o.data_path,
                layout=o.layout,
                pixel_max=o.pixel_max,
            )
        return self._splits[name]

    @property
    def metrics(self):
        if self._metrics is None:
            from pbtnas.tasks.gan.evaluation import GanMetrics

            self._metrics = GanMetrics(self)
        return self._metrics

    # -- architecture -------------------------------------------------------------------------
    def gene_modules(self, gene: str) -> dict[str, list[str]]:
        return gene_modules(self.space, gene)

    def build_generator(self, genome: Genome) -> Generator:
        o = self.options
        return Generator(genome, hard=self.hard, width=o.width, latent_dim=o.latent_dim, bottom=self.resolution // 8, channels=self.channels)

    def build_discriminator(self, genome: Genome) -> nn.Module:
        if self.hard:
            return SearchDiscriminator(genome, self.channels, self.options.disc_width)
        return FixedDiscriminator(self.channels, self.options.disc_width)

    def init_state(self, genome: Genome, seed: int) -> MemberState:
        genome = self.space.validate(genome)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            gen = self.build_generator(genome)
            disc = self.build_discriminator(genome)
        return MemberState(
            models={"gen": state_dict_cpu(gen), "gen_ema": state_dict_cpu(gen), "disc": state_dict_cpu(disc)},
            optim={"gen": {}, "disc": {}},
            extra={"d_iters": 0, "g_updates": 0},
        )

    def _load(self, genome: Genome, state: MemberState, key: str) -> nn.Module:
        with torch.random.fork_rng(devices=[]):  # the initial weights are overwritten: leave torch's RNG alone
            net = self.build_discriminator(genome) if key == "disc" else self.build_generator(genome)
        load_weights(net, state.models[key], key)
        return net.to(self.device)

    def build_module(self, genome: Genome, state: MemberState) -> nn.Module:
        """The EMA generator in eval mode: ``forward(z)`` with ``z`` of shape ``(N, latent_dim)``."""
        return self._load(genome, state, "gen_ema").eval()

    # -- training -----------------------------------------------------------------------------
    def _adam(self, module: nn.Module) -> torch.optim.Optimizer:
        o = self.options
        return torch.optim.Adam(module.parameters(), lr=o.lr, betas=(o.beta1, o.beta2), eps=o.adam_eps)

    def train_step(self, genome: Genome, state: MemberState, step: int, seed: int):
        o = self.options
        gen, ema, disc = (self._load(genome, state, k) for k in ("gen", "gen_ema", "disc"))
        opt_g, opt_d = self._adam(gen), self._adam(disc)
        restore_optimizer(opt_g, gen, state.optim.get("gen", {}))
        restore_optimizer(opt_d, disc, state.optim.get("disc", {}))
        counters = {"d_iters": int(state.extra.get("d_iters", 0)), "g_updates": int(state.extra.get("g_updates", 0))}
        settings = TrainSettings(o.batch_size, o.batches_per_step, o.n_critic, o.latent_dim, o.ema_decay, o.ema_warmup)
        data = self.split("train")
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        fmt = torch.channels_last if o.channels_last else None
        if fmt is not None:  # parameters change format in place: the optimizers keep them
            for net in (gen, ema, disc):
                net.to(memory_format=fmt)  # type: ignore[call-overload]  # Module.to accepts it; the stubs do not say so
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            metrics = train_gan(gen, ema, disc, opt_g, opt_d, data, settings, counters, self.device, channels_last=fmt is not None)
        if fmt is not None:  # states are stored in the default format whatever the training used
            for net in (gen, ema, disc):
                net.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
        new = MemberState(
            models={"gen": state_dict_cpu(gen), "gen_ema": state_dict_cpu(ema), "disc": state_dict_cpu(disc)},
            optim={"gen": _cpu(capture_optimizer(opt_g, gen)), "disc": _cpu(capture_optimizer(opt_d, disc))},
            extra={**state.extra, **counters},
        )
        return new, metrics

    # -- evaluation ---------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, genome: Genome, state: MemberState, n: int, seed: int) -> torch.Tensor:
        """``n`` images of the EMA generator (CPU, in [-1, 1]); z drawn from ``seed``."""
        gen = self.build_module(genome, state)
        z = torch.randn(n, self.options.latent_dim, generator=torch.Generator().manual_seed(seed))
        out = [gen(z[i : i + 500].to(self.device)).cpu() for i in range(0, n, 500)]
        return torch.cat(out)

    def evaluate(self, genome: Genome, state: MemberState, seed: int) -> float:
        fd = self.metrics.fd_clf(self.sample(genome, state, self.options.eval_samples, seed), "train")
        return -fd if np.isfinite(fd) else float("-inf")

    def final_evaluate(self, genome: Genome, state: MemberState, seed: int) -> dict[str, float]:
        return self.metrics.final(self.sample(genome, state, self.options.final_samples, seed))

    def sample_grid(self, genome: Genome, state: MemberState, path: str, seed: int) -> str:
        """Write a ``grid_size`` x ``grid_size`` PNG of EMA-generator samples to ``path``."""
        from pbtnas.tasks.gan.grid import save_grid

        n = self.options.grid_size
        save_grid(self.sample(genome, state, n * n, seed), path, n)
        return path

    def export_info(self) -> dict:
        """An npz run's generator is rebuilt from its recorded shape, without the data file."""
        if self.options.dataset != "npz":
            return super().export_info()
        return {**super().export_info(), "options": {"channels": self.channels, "image_size": self.resolution}}

    def describe(self) -> dict:
        return {
            **super().describe(),
            "space": self.options.space,
            "genes": len(self.space),
            "dataset": self.options.dataset,
            "resolution": self.resolution,
            "channels": self.channels,
        }

    def report_hints(self) -> ReportHints:
        return ReportHints(headline=data_headline("gan", self.options.dataset, self.options.data_path))


def _cpu(named: dict) -> dict:
    return {n: {k: (v.to("cpu").contiguous() if torch.is_tensor(v) else v) for k, v in s.items()} for n, s in named.items()}
