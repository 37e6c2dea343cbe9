"""Reinforcement learning on MuJoCo control with a DrQ-v2-style agent whose actor, critic and
(from pixels) encoder are searched (docs/algorithm.md §5, docs/rl.md).

One PBT step of a member: reset the training environment with a seed from the member's step
seed, act for ``frames_per_step`` frames (uniformly random actions for the first
``seed_frames`` frames of the member's life, then the actor plus Gaussian noise whose std
follows ``linear(1.0 -> 0.1)`` over ``std_schedule_frames``), store every step in the replay
buffer, and update actor and critic every ``update_every`` agent steps. The frame counter that
drives the schedule lives in ``MemberState.extra`` and is inherited by a child from its primary
parent, so exploitation never restarts exploration. Fitness is the mean return of
``eval_episodes`` deterministic episodes on seeds kept apart from training seeds.
"""

from __future__ import annotations

import copy
import time
import weakref
from dataclasses import dataclass

import numpy as np
import torch

from pbtnas.errors import ConfigError
from pbtnas.search.space import Genome
from pbtnas.search.state import MemberState, capture_optimizer, load_weights, restore_optimizer, state_dict_cpu
from pbtnas.tasks.base import ReportHints, Task, doc
from pbtnas.tasks.memory import F32, I64, MemoryNeed
from pbtnas.tasks.rl.agent import Nets, linear_schedule, noisy_action, update
from pbtnas.tasks.rl.envs import FrameStack, check_env_name, check_renderer, dm_suite, env_module, env_words, make_env, parse_env_name
from pbtnas.tasks.rl.networks import Actor, Critic, DeployedActor, Encoder
from pbtnas.tasks.rl.replay import ReplayBuffer
from pbtnas.tasks.rl.space import gene_modules, rl_space

#: training episodes draw their seeds below this; evaluation episodes at and above it
EVAL_SEED_BASE = 2**30
#: final evaluation episodes use seeds disjoint from the fitness episodes
FINAL_SEED_BASE = EVAL_SEED_BASE + 100_000


@dataclass
class RLOptions:
    """Options of the RL task (config section ``task``)."""

    env: str = doc("dm_control 'domain-task' (e.g. cheetah-run) or gymnasium 'Name-vN' (e.g. HalfCheetah-v5)", "cheetah-run")
    pixels: bool = doc("learn from 84x84 pixels with the searched encoder (dm_control only)", False)
    image_size: int = doc("side of rendered frames with pixels", 84, ge=1)
    frame_stack: int = doc("frames stacked as the observation with pixels", 3, ge=1)
    action_repeat: int = doc("environment frames per agent action (rewards summed)", 2, ge=1)
    episode_frames: int = doc("frames per episode (dm_control's time limit is 1000)", 1000, ge=1)
    hidden_dim: int = doc("hidden width of actor and critic MLPs (paper: 1024)", 1024, ge=1)
    encoder_channels: int = doc("channels of the pixel encoder", 32, ge=1)
    lr: float = doc("Adam learning rate of actor, critic and encoder", 1e-4, gt=0)
    batch_size: int = doc("replay batch size per update", 256, ge=1)
    gamma: float = doc("discount factor", 0.99, gt=0, le=1)
    nstep: int = doc("n of n-step returns", 3, ge=1)
    critic_tau: float = doc("Polyak rate of the target critic", 0.01, gt=0, le=1)
    update_every: int = doc("agent steps between updates", 2, ge=1)
    seed_frames: int = doc("frames of uniformly random actions at the start of a member's life", 4000, ge=0)
    std_start: float = doc("exploration std at frame 0", 1.0, ge=0)
    std_end: float = doc("exploration std after the schedule", 0.1, ge=0)
    std_schedule_frames: int = doc("frames over which the std falls linearly from std_start to std_end", 500_000, ge=0)
    stddev_clip: float = doc("clip of the target-policy and actor-update noise", 0.3, ge=0)
    augment_pad: int = doc("random-shift augmentation padding in pixels (pixels only; 0 = off)", 4, ge=0)
    frames_per_step: int = doc("environment frames each member acts per PBT step", 10_000, ge=1)
    buffer_capacity: int = doc("replay buffer capacity in agent steps (bounded memory)", 1_000_000)
    buffer: str = doc(
        "'member': one buffer per member, inherited by children and checkpointed; "
        "'shared': one buffer per worker process shared by its members (not checkpointed)",
        "member",
        choices=("member", "shared"),
    )
    eval_episodes: int = doc("deterministic episodes per fitness evaluation", 10, ge=1, le=FINAL_SEED_BASE - EVAL_SEED_BASE)
    final_eval_episodes: int = doc("episodes of the final, held-apart evaluation", 30, ge=1, le=FINAL_SEED_BASE - EVAL_SEED_BASE)
    # (at most the gap between the fitness episodes' seeds, EVAL_SEED_BASE + k, and the final ones',
    # FINAL_SEED_BASE + k: more would reuse seeds, and a list of 1e9 seeds is 36 GB)
    device: str = doc("torch device members train on", "cpu")


class RLTask(Task):
    """Search the actor/critic (and encoder) of a DrQ-v2-style agent; fitness: mean eval return."""

    Options = RLOptions
    shadow_models = {"critic_target": "critic"}
    fitness_name = "eval_return"
    final_metric_name = "final_return"
    final_metric_higher_is_better = True
    default_final_selection = "best-last"
    #: task.env=my_envs:Name-v0 imports my_envs: a run records that file, and export, soup,
    #: resume and pbtnas.load import it only while it is unchanged (docs/faults.md)
    code_options = {"env": env_module}

    def __init__(self, options: RLOptions):
        super().__init__(options)
        o = options  # each option's own range: its declaration in RLOptions
        if o.pixels and o.image_size < 8:
            raise ConfigError(f"task.image_size must be at least 8 pixels, got {o.image_size}")
        if o.buffer_capacity < o.nstep + o.frame_stack + 1:
            raise ConfigError(f"task.buffer_capacity {o.buffer_capacity} is too small for nstep {o.nstep}")
        if o.batch_size > o.buffer_capacity:
            # a replay batch is drawn from the buffer: a larger one is nonsense, and is allocated
            # before anything else notices (a batch of 1e9 was the process killed for memory)
            raise ConfigError(f"task.batch_size {o.batch_size} is larger than task.buffer_capacity {o.buffer_capacity}")
        self.space = rl_space(o.pixels)
        self._envs: dict[str, object] = {}
        self._shared_buffer: ReplayBuffer | None = None
        # (weak reference to the state train_step returned, its evaluation episode returns): the
        # step evaluates its result once and `evaluate` reuses it for that very state
        self._evaluated: tuple | None = None

    @classmethod
    def memory_needs(cls, options: RLOptions) -> list[MemoryNeed]:
        o = options
        # per slot of a replay buffer: the observation (one uint8 frame with pixels, else at least
        # one float), at least one action, reward, discount, episode step, and the two int64
        # index arrays a sample builds over the whole buffer (ReplayBuffer.valid_starts)
        obs = 3 * o.image_size**2 if o.pixels else F32
        slot = obs + F32 + F32 + F32 + I64 + 2 * I64
        sized = ("image_size",) if o.pixels else ()
        what = "a replay buffer" + (f" of 3x{o.image_size}x{o.image_size} frames" if o.pixels else "")
        return [MemoryNeed(("buffer_capacity", *sized), o.buffer_capacity * slot, what)]

    def prepare(self) -> None:
        """Checks made once in the driver before a run: the environment's name (with
        the closest known names when it is unknown) and, for pixels, that frames can be rendered.
        Inspecting a preset (``pbtnas space``) builds the task without these checks."""
        o = self.options  # the device is checked with the run's config (pbtnas.tasks.devices)
        check_env_name(o.env, o.pixels)
        env = make_env(o.env, o.action_repeat, o.pixels, o.image_size, o.episode_frames)
        try:
            self._check_shapes(env)
        finally:
            env.close()  # a throwaway: workers build their own (a GL context must not be shared)

    # -- environments ------------------------------------------------------------------------
    def env(self, role: str = "train"):
        """The (lazily built, cached) environment used for ``role`` ('train' or 'eval')."""
        if role not in self._envs:
            o = self.options
            env = make_env(o.env, o.action_repeat, o.pixels, o.image_size, o.episode_frames)
            self._check_shapes(env)
            self._envs[role] = env
        return self._envs[role]

    def _check_shapes(self, env) -> None:
        if self.options.pixels:
            if len(env.obs_shape) != 3 or env.obs_shape[0] != 3:
                raise ConfigError(f"pixel observations must be RGB frames (3, H, W), got {env.obs_shape}")
        elif len(env.obs_shape) != 1 or env.obs_shape[0] < 1:
            raise ConfigError(f"state observations must be a non-empty vector, got shape {env.obs_shape}")
        if env.action_dim < 1:
            raise ConfigError(f"the action space must be a non-empty vector, got {env.action_dim} dims")

    @property
    def obs_shape(self) -> tuple:
        """Shape of the agent's observation (frames stacked on channels with pixels)."""
        shape = self.env().obs_shape
        return (shape[0] * self.options.frame_stack, *shape[1:]) if self.options.pixels else tuple(shape)

    # -- architecture ------------------------------------------------------------------------
    def gene_modules(self, gene: str) -> dict[str, list[str]]:
        return gene_modules(self.space, gene)

    def build_nets(self, genome: Genome) -> Nets:
        """Untrained networks of a genome (the task's normal initialisation; global RNG)."""
        o = self.options
        encoder = Encoder(genome, self.obs_shape, o.encoder_channels) if o.pixels else None
        repr_dim = encoder.repr_dim if encoder is not None else self.obs_shape[0]
        action_dim = self.env().action_dim
        actor = Actor(genome, repr_dim, action_dim, o.hidden_dim)
        critic = Critic(genome, repr_dim, action_dim, o.hidden_dim)
        return Nets(actor=actor, critic=critic, critic_target=copy.deepcopy(critic), encoder=encoder)

    def init_state(self, genome: Genome, seed: int) -> MemberState:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            nets = self.build_nets(genome)
        models = {"actor": state_dict_cpu(nets.actor), "critic": state_dict_cpu(nets.critic), "critic_target": state_dict_cpu(nets.critic_target)}
        optim: dict[str, dict] = {"actor": {}, "critic": {}}
        if nets.encoder is not None:
            models["encoder"] = state_dict_cpu(nets.encoder)
            optim["encoder"] = {}
        # The buffer is allocated on the first training step: a fresh model for shrink-perturb
        # must stay cheap.
        extra = {"frames": 0, "updates": 0, "episodes": 0, "buffer": None}
        return MemberState(models=models, optim=optim, extra=extra)

    def load_nets(self, genome: Genome, state: MemberState, train: bool) -> Nets:
        """Networks of a member with its weights loaded strictly (and optimizers when ``train``)."""
        with torch.random.fork_rng(devices=[]):  # the initial weights are overwritten: leave torch's RNG alone
            nets = self.build_nets(genome)
        dev = self.device
        for key in ("actor", "critic", "critic_target", "encoder"):
            module = getattr(nets, key)
            if module is not None:
                load_weights(module, state.models[key], key)
                module.to(dev)
        nets.critic_target.eval()  # its spectral-norm vectors follow the critic by Polyak averaging
        if train:
            lr = self.options.lr
            nets.actor_opt = torch.optim.Adam(nets.actor.parameters(), lr=lr)
            nets.critic_opt = torch.optim.Adam(nets.critic.parameters(), lr=lr)
            restore_optimizer(nets.actor_opt, nets.actor, state.optim.get("actor", {}))
            restore_optimizer(nets.critic_opt, nets.critic, state.optim.get("critic", {}))
            if nets.encoder is not None:
                nets.encoder_opt = torch.optim.Adam(nets.encoder.parameters(), lr=lr)
                restore_optimizer(nets.encoder_opt, nets.encoder, state.optim.get("encoder", {}))
        else:
            for m in (nets.actor, nets.critic, nets.encoder):
                if m is not None:
                    m.eval()
        return nets

    def build_module(self, genome: Genome, state: MemberState) -> torch.nn.Module:
        nets = self.load_nets(genome, state, train=False)
        env = self.env()
        module = DeployedActor(nets.encoder, nets.actor, self.obs_shape, torch.from_numpy(env.low), torch.from_numpy(env.high))
        return module.to(self.device).eval()

    # -- training ----------------------------------------------------------------------------
    def _buffer(self, state: MemberState) -> ReplayBuffer:
        o = self.options
        env = self.env()
        dtype = torch.uint8 if o.pixels else torch.float32
        stack = o.frame_stack if o.pixels else 1
        if o.buffer == "shared":
            if self._shared_buffer is None:
                self._shared_buffer = ReplayBuffer(o.buffer_capacity, env.obs_shape, dtype, env.action_dim, stack)
            return self._shared_buffer
        saved = state.extra.get("buffer")
        if saved is None:
            return ReplayBuffer(o.buffer_capacity, env.obs_shape, dtype, env.action_dim, stack)
        # Copy: the caller's input state must stay as it was (a retried step starts from it).
        return ReplayBuffer.from_state({k: (v.clone() if torch.is_tensor(v) else v) for k, v in saved.items()})

    def _obs_tensor(self, obs: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(obs, device=self.device).unsqueeze(0).float()

    def train_step(self, genome: Genome, state: MemberState, step: int, seed: int):
        o = self.options
        nets = self.load_nets(genome, state, train=True)
        buffer = self._buffer(state)
        env = self.env("train")
        gen = torch.Generator().manual_seed(int(seed))
        rng = np.random.default_rng(int(seed))
        frames, updates, episodes = (int(state.extra.get(k, 0)) for k in ("frames", "updates", "episodes"))
        stacker = FrameStack(o.frame_stack) if o.pixels else None

        def start_episode():
            first = env.reset(int(rng.integers(EVAL_SEED_BASE)))  # training seeds lie below EVAL_SEED_BASE
            buffer.add_first(first)
            return stacker.reset(first) if stacker else first

        start, frames_before, updates_before = time.perf_counter(), frames, updates
        obs = start_episode()
        returns, ep_return, losses = [], 0.0, []
        n_steps = max(1, o.frames_per_step // o.action_repeat)
        for t in range(n_steps):
            std = linear_schedule(o.std_start, o.std_end, o.std_schedule_frames, frames)
            if frames < o.seed_frames:
                action = torch.rand(env.action_dim, generator=gen) * 2.0 - 1.0
            else:
                with torch.no_grad():
                    nets.actor.eval()
                    mean = nets.actor(nets.encode(self._obs_tensor(obs)))[0].cpu()
                    nets.actor.train()
                action = noisy_action(mean, std, gen, None)
            next_frame, reward, discount, last = env.step(action.numpy())
            buffer.add(action, reward, discount, next_frame)
            obs = stacker.push(next_frame) if stacker else next_frame
            frames += o.action_repeat
            ep_return += reward
            if frames >= o.seed_frames and t % o.update_every == 0 and buffer.can_sample(o.nstep):
                batch = [b.to(self.device) for b in buffer.sample(o.batch_size, o.nstep, o.gamma, rng)]
                losses.append(
                    update(nets, batch, std, gen, tau=o.critic_tau, stddev_clip=o.stddev_clip, augment_pad=o.augment_pad if o.pixels else 0)
                )
                updates += 1
            if last:
                returns.append(ep_return)
                episodes += 1
                ep_return = 0.0
                if t + 1 < n_steps:
                    obs = start_episode()

        seconds = max(time.perf_counter() - start, 1e-9)
        models = {"actor": state_dict_cpu(nets.actor), "critic": state_dict_cpu(nets.critic), "critic_target": state_dict_cpu(nets.critic_target)}
        assert nets.actor_opt is not None and nets.critic_opt is not None, "optimizers are made before training"
        optim = {"actor": _cpu(capture_optimizer(nets.actor_opt, nets.actor)), "critic": _cpu(capture_optimizer(nets.critic_opt, nets.critic))}
        if nets.encoder is not None:
            models["encoder"] = state_dict_cpu(nets.encoder)
            assert nets.encoder_opt is not None
            optim["encoder"] = _cpu(capture_optimizer(nets.encoder_opt, nets.encoder))
        extra = {
            **state.extra,
            "frames": frames,
            "updates": updates,
            "episodes": episodes,
            "buffer": buffer.state() if o.buffer == "member" else None,
        }
        metrics = {
            "frames": frames,
            "updates": updates,
            "std": linear_schedule(o.std_start, o.std_end, o.std_schedule_frames, frames),
            # speeds of this step's acting and learning (wall clock; never part of a result)
            "fps": round((frames - frames_before) / seconds, 1),
            "updates_per_s": round((updates - updates_before) / seconds, 1),
        }
        if returns:
            metrics["train_return"] = float(np.mean(returns))
        if losses:
            for key in losses[0]:
                metrics[key] = float(np.mean([m[key] for m in losses]))
        new_state = MemberState(models=models, optim=optim, extra=extra)
        # The fitness episodes, run here once so that the journal holds every episode's return and
        # their spread; `evaluate` returns their mean for this state without playing them again.
        eval_returns = self.episode_returns(genome, new_state, self._eval_seeds())
        self._evaluated = (weakref.ref(new_state), eval_returns)
        metrics.update(eval_return_metrics(eval_returns))
        return new_state, metrics

    # -- evaluation --------------------------------------------------------------------------
    @torch.no_grad()
    def episode_returns(self, genome: Genome, state: MemberState, seeds: list[int]) -> list[float]:
        """Returns of deterministic episodes (the actor's mean action), one per seed."""
        nets = self.load_nets(genome, state, train=False)
        env = self.env("eval")
        out = []
        for s in seeds:
            stacker = FrameStack(self.options.frame_stack) if self.options.pixels else None
            frame = env.reset(s)
            obs = stacker.reset(frame) if stacker else frame
            total, last = 0.0, False
            while not last:
                action = nets.actor(nets.encode(self._obs_tensor(obs)))[0].cpu().numpy()
                frame, reward, _, last = env.step(action)
                obs = stacker.push(frame) if stacker else frame
                total += reward
            if not np.isfinite(total):
                return [float("-inf")]
            out.append(total)
        return out

    def _eval_seeds(self) -> list[int]:
        # The same held-apart seeds for every member and step: fitness compares like with like.
        return [EVAL_SEED_BASE + k for k in range(self.options.eval_episodes)]

    def evaluate(self, genome: Genome, state: MemberState, seed: int) -> float:
        cached = self._evaluated
        if cached is not None and cached[0]() is state:
            returns = cached[1]
        else:
            returns = self.episode_returns(genome, state, self._eval_seeds())
        return float(np.mean(returns))

    @torch.no_grad()
    def record_episode(
        self, genome: Genome, state: MemberState, size: int = 128, max_frames: int = 250, seed: int = FINAL_SEED_BASE
    ) -> tuple[list[np.ndarray], float]:
        """Frames (H, W, 3 uint8, one per agent step, at most ``max_frames``, longer side
        ``size``) of one deterministic evaluation episode, and its return. dm_control needs a
        renderer (EGL, OSMesa or GLFW with a display); a gymnasium environment must render
        ``rgb_array`` frames (MuJoCo's need a renderer too, classic control needs pygame). Raises
        :class:`~pbtnas.errors.PbtnasError` saying why when it cannot render."""
        o = self.options
        if parse_env_name(o.env)[0] == "dmc":
            dm_suite(True)  # rendering: EGL unless MUJOCO_GL says otherwise
            check_renderer()
        nets = self.load_nets(genome, state, train=False)
        env = make_env(o.env, o.action_repeat, o.pixels, o.image_size, o.episode_frames, render=True)
        try:
            stacker = FrameStack(o.frame_stack) if o.pixels else None
            frame = env.reset(seed)
            obs = stacker.reset(frame) if stacker else frame
            frames, total, last = [env.render(size)], 0.0, False
            while not last:
                action = nets.actor(nets.encode(self._obs_tensor(obs)))[0].cpu().numpy()
                frame, reward, _, last = env.step(action)
                obs = stacker.push(frame) if stacker else frame
                total += reward
                if len(frames) < max_frames:
                    frames.append(env.render(size))
        finally:
            env.close()
        return frames, float(total)

    def final_evaluate(self, genome: Genome, state: MemberState, seed: int) -> dict[str, float]:
        seeds = [FINAL_SEED_BASE + k for k in range(self.options.final_eval_episodes)]
        returns = self.episode_returns(genome, state, seeds)
        return {
            "final_return": float(np.mean(returns)),
            "final_return_std": float(np.std(returns)),
            "final_episodes": len(returns),
            "frames": int(state.extra.get("frames", 0)),
        }

    def describe(self) -> dict:
        return {**super().describe(), "env": self.options.env, "pixels": self.options.pixels, "genes": len(self.space)}

    def report_hints(self) -> ReportHints:
        pixels = " from pixels" if self.options.pixels else ""
        return ReportHints(
            headline=f"rl on {env_words(str(self.options.env))}{pixels}", metrics_title="Returns and training metrics", episode_video=True
        )


def eval_return_metrics(returns: list[float]) -> dict:
    """Every evaluation episode's return and their spread, as journal metrics."""
    values = [float(r) for r in returns]
    if not values or not all(np.isfinite(values)):
        return {"eval_returns": [v if np.isfinite(v) else None for v in values]}
    return {
        "eval_returns": values,
        "eval_return_std": float(np.std(values)),
        "eval_return_min": float(min(values)),
        "eval_return_max": float(max(values)),
    }


def _cpu(named: dict) -> dict:
    return {n: {k: (v.to("cpu") if torch.is_tensor(v) else v) for k, v in s.items()} for n, s in named.items()}
