"""Every knob of the shared training loop, and the small pure helpers the loop's steps use."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

import torch

from gan_augment.core.devices import check_device
from gan_augment.core.errors import ConfigError
from gan_augment.core.naming import did_you_mean
from gan_augment.training.precision import PRECISIONS


@dataclass
class TrainConfig:
    """Every knob of the shared loop. A backend's ``train_defaults`` override these defaults;
    the user's values override both."""

    steps: int | None = None  # generator updates; or give epochs
    epochs: float | None = None  # passes over the data by the discriminator
    batch_size: int = 64
    optimizer: str = "adam"  # adam | rmsprop
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    schedule: str = "constant"  # constant | cosine
    min_lr_ratio: float = 0.0  # cosine decays to lr * min_lr_ratio
    n_critic: int = 1  # discriminator updates per generator update
    ema_decay: float | None = None  # e.g. 0.999: sample from an EMA of the generator
    seed: int = 0
    device: str = "auto"  # auto: cuda, then mps, then cpu
    precision: str = "auto"  # auto: bf16 where native (GPU, AVX512-BF16/AMX CPUs), fp16 on older GPUs, else fp32
    channels_last: bool | str = "auto"  # auto: on where measured faster (CPU); True/False to force
    fuse_critic: bool = False  # real and fake through a per-sample critic in one forward pass
    compile: bool = False  # torch.compile the generator (and a critic that needs no double backward)
    out_dir: str | None = None
    log_every: int = 10
    sample_every: int = 500
    checkpoint_every: int = 500
    checkpoint_minutes: float = 10.0  # also checkpoint after this much training time; 0: off
    resume: bool = False
    stop_at: int | None = None  # stop early (staged runs); schedules still span `steps`
    progress: bool = True
    # print the adoption step's "data: ..." line and notes before training; None: when progress
    # is on and the layout came from the data (the CLI passes True: its first line, even --quiet)
    show_data: bool | None = None
    grid_size: int = 64
    monitor_every: int = 0  # 0: off; else diversity/divergence checks every N steps
    collapse_threshold: float = 0.5  # warn when diversity falls below this share of its first value
    divergence_patience: int = 5  # consecutive worsening checks of the D loss before a warning
    early_stop: bool = False  # stop on collapse/divergence instead of warning
    sync_batchnorm: bool = False  # under torchrun
    # DiffAugment on every critic input: "auto" (on below 1,000 training images), a policy such as
    # "color,translation,cutout", or "none"/None (off)
    diffaugment: str | None = "auto"
    # draw each image with probability proportional to its class count ** -class_balance: 0 (every
    # image once per epoch), 1 (every class equally often), 0.5 (class shares go as sqrt(count))
    class_balance: float = 0.0
    # transfer (training/transfer.py): start from a parent run or model folder of the same backend,
    # freeze its discriminator's first freeze_d blocks (FreezeD), and seed new classes' rows
    init_from: str | None = None
    freeze_d: int = 0
    new_class_init: str = "auto"  # auto | nearest | mean

    @classmethod
    def build(cls, backend_defaults: dict[str, Any], user: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        for key in list(backend_defaults) + list(user):
            if key not in names:
                hint = did_you_mean(key, sorted(names))
                raise ConfigError(f"unknown training setting {key!r}.{hint} Known: {', '.join(sorted(names))}.")
        given = {k: v for k, v in user.items() if v is not None or k == "diffaugment"}  # None: off
        cfg = cls(**{**backend_defaults, **given})
        cfg.betas = tuple(cfg.betas)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if self.steps is None and self.epochs is None:
            raise ConfigError("say how long to train: steps=N or epochs=N.")
        if self.steps is not None and (not isinstance(self.steps, int) or self.steps < 1):
            raise ConfigError(f"steps must be a positive integer, got {self.steps!r}.")
        if self.epochs is not None and self.epochs <= 0:
            raise ConfigError(f"epochs must be positive, got {self.epochs!r}.")
        if self.optimizer not in ("adam", "rmsprop"):
            raise ConfigError(f"optimizer must be 'adam' or 'rmsprop', got {self.optimizer!r}.")
        if self.schedule not in ("constant", "cosine"):
            raise ConfigError(f"schedule must be 'constant' or 'cosine', got {self.schedule!r}.")
        if self.channels_last not in ("auto", True, False):
            raise ConfigError(f"channels_last must be 'auto', True or False, got {self.channels_last!r}.")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}.")
        if isinstance(self.checkpoint_minutes, bool) or not isinstance(self.checkpoint_minutes, (int, float)) \
                or not self.checkpoint_minutes >= 0:
            raise ConfigError(f"checkpoint_minutes must be a number of minutes >= 0 (0: off), "
                              f"got {self.checkpoint_minutes!r}.")
        if self.batch_size < 1 or self.n_critic < 1:
            raise ConfigError("batch_size and n_critic must be at least 1.")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise ConfigError(f"ema_decay must lie in (0, 1), got {self.ema_decay!r}.")
        if self.init_from is not None and not isinstance(self.init_from, (str, os.PathLike)):
            raise ConfigError(f"init_from must be a run folder, model folder or Hub repo id, got {self.init_from!r}.")
        if not isinstance(self.freeze_d, int) or isinstance(self.freeze_d, bool) or self.freeze_d < 0:
            raise ConfigError(f"freeze_d must be a whole number >= 0 (discriminator blocks to freeze), got {self.freeze_d!r}.")
        if self.new_class_init not in ("auto", "nearest", "mean"):
            raise ConfigError(f"new_class_init must be 'auto', 'nearest' or 'mean', got {self.new_class_init!r}.")
        if isinstance(self.class_balance, bool) or not isinstance(self.class_balance, (int, float)) \
                or not 0 <= self.class_balance <= 1:
            raise ConfigError(f"class_balance must be a number from 0 (images drawn equally often) to 1 "
                              f"(classes drawn equally often), got {self.class_balance!r}.")
        if self.diffaugment is not None and not isinstance(self.diffaugment, str):
            raise ConfigError(f"diffaugment must be 'auto', a policy such as 'color,translation,cutout', "
                              f"or 'none'; got {self.diffaugment!r}.")


@dataclass
class StepContext:
    """What a backend's loss needs besides the networks: the run's RNG, step and device, which
    of the step's n_critic discriminator updates this is, and whether to fuse critic passes.
    ``extra`` lives for one generator step (e.g. a fake batch reused by the generator update)."""

    rng: torch.Generator
    step: int
    total_steps: int
    device: torch.device
    extra: dict[str, Any] = field(default_factory=dict)
    critic_step: int = 0
    n_critic: int = 1
    fuse_critic: bool = False

    @property
    def last_critic_step(self) -> bool:
        """True in the discriminator update right before the generator update."""
        return self.critic_step == self.n_critic - 1


def pick_device(name: str = "auto") -> torch.device:
    if name != "auto":
        return check_device(name)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + epoch) % (2**63))


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The data order of one epoch: a pure function of (seed, epoch), so resume needs no state."""
    return torch.randperm(n, generator=_epoch_generator(seed, epoch))


def balanced_epoch(labels: torch.Tensor, power: float, seed: int, epoch: int) -> torch.Tensor:
    """One epoch's rows, as many as there are images, drawn with replacement with probability
    proportional to ``count(class) ** -power`` (``power`` 1: every class equally often). A class
    of 19 among 2,500 images otherwise reaches the generator in a quarter of the batches at batch
    32; the cost is that its few images repeat more often (DiffAugment is the guard). A pure
    function of (labels, power, seed, epoch), like :func:`epoch_permutation`."""
    labels = labels.cpu()
    counts = torch.bincount(labels).double()
    weights = counts.clamp(min=1).pow(-float(power))[labels]
    return torch.multinomial(weights, len(labels), replacement=True, generator=_epoch_generator(seed, epoch))


def noise_seed(seed: int, rank: int, step: int = 0) -> int:
    """Seed of a rank's in-step noise generator: distinct per rank, and (``step``) per restart
    point when a checkpoint's RNG state cannot be used (another process count)."""
    return seed * 7919 + 17 + rank + 104729 * step
