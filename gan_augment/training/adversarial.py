"""The shared base class of adversarial backends: they supply networks and losses, the shared
trainer (loop.py, the same layer) runs the loop. It meets loop.py's ``Trainable`` protocol, and
the loop changes its networks only through the public handles here (``replace_networks``,
``attach_ema``, ``adopt_class_names``)."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import torch
from torch import nn

from gan_augment.core.contract import GenerativeAugmenter
from gan_augment.core.devices import check_device
from gan_augment.core.errors import ConfigError
from gan_augment.core.layout import signed_to_unit
from gan_augment.core.serialization import load_strict
from gan_augment.gan.diffaugment import AugmentedCritic, resolve_policy
from gan_augment.gan.nets import nearest_supported_sizes, upsampling_plan
from gan_augment.training.loop import Trainer
from gan_augment.training.precision import autocast, resolve_precision
from gan_augment.training.stage import PrepareContext


class AdversarialAugmenter(GenerativeAugmenter):
    """Base for GAN backends: they supply networks and losses; the shared trainer runs the loop.

    Randomness inside a step comes only from ``ctx.rng`` so that resume is exact.
    """

    defaults: ClassVar[dict[str, Any]] = {"latent_dim": 100}
    #: Trainer settings this backend prefers; the user's own settings win.
    train_defaults: ClassVar[dict[str, Any]] = {}
    #: True when a loss differentiates through D twice (gradient penalty): torch.compile then
    #: leaves D uncompiled, as its aot_autograd has no double backward.
    uses_double_backward: ClassVar[bool] = False

    def __init__(self, **config: Any):
        super().__init__(**config)
        upsampling_plan(self.config["image_size"])  # an unsupported size fails at create(), not mid-fit
        self._generator: nn.Module | None = None
        self._discriminator: nn.Module | None = None
        self._ema: nn.Module | None = None  # the trainer attaches it when EMA is on
        #: precision of sample(): "auto" (bf16 where the hardware has it natively, else fp32),
        #: "fp32", "bf16" or "fp16"; not saved with the model
        self.sample_precision = "auto"

    @classmethod
    def image_size_alternatives(cls, size: int) -> list[int]:
        return nearest_supported_sizes(size)

    def adopt_layout(self, data: Any) -> str:
        provisional = bool(self.deferred_layout)  # networks built before then are untrained
        note = super().adopt_layout(data)
        if provisional:
            self.rebuild()
        return note

    # -- networks, built lazily so fit() can adopt the data's class names, size and channels first
    @property
    def generator(self) -> nn.Module:
        if self._generator is None:
            self._check_class_names()
            self._generator = self.build_generator()
        return self._generator

    @property
    def discriminator(self) -> nn.Module:
        if self._discriminator is None:
            self._check_class_names()
            self._discriminator = self.build_discriminator()
        return self._discriminator

    def _check_class_names(self) -> None:
        """A conditional backend's networks need the class count: say so before building them."""
        if self.conditional and self.config["class_names"] is None:
            raise ConfigError(f"{self.name} is conditional and needs the class names: pass class_names=[...] "
                              "or call fit() on labelled data, which adopts the data's class names.")

    @property
    def ema(self) -> nn.Module | None:
        """The generator's EMA copy (an ``AveragedModel``) when the run uses EMA, else None."""
        return self._ema

    def attach_ema(self, ema: nn.Module | None) -> None:
        """Sample from ``ema`` (the trainer's EMA copy of the generator); None: from the generator."""
        self._ema = ema

    def replace_networks(self, generator: nn.Module, discriminator: nn.Module) -> None:
        """Swap in converted networks holding the same weights (SyncBatchNorm under torchrun)."""
        self._generator, self._discriminator = generator, discriminator

    def rebuild(self) -> None:
        """Forget the networks and EMA: the next use builds them from the config again."""
        self._generator = self._discriminator = self._ema = None

    def adopt_class_names(self, names: list[str]) -> None:
        super().adopt_class_names(names)
        self.rebuild()  # a conditional network's size follows the class count

    @abstractmethod
    def build_generator(self) -> nn.Module:
        """Generator mapping (latent, labels) to images in [-1, 1]."""

    @abstractmethod
    def build_discriminator(self) -> nn.Module:
        """Discriminator or critic."""

    @abstractmethod
    def discriminator_loss(self, G, D, real, labels, ctx) -> tuple[torch.Tensor, dict]:
        """Loss to minimise for D on one real batch in [-1, 1]; returns (loss, extra logs)."""

    @abstractmethod
    def generator_loss(self, G, D, labels, ctx) -> tuple[torch.Tensor, dict]:
        """Loss to minimise for G; ``labels`` are the current real batch's labels."""

    def prepare(self, ctx: PrepareContext) -> None:
        """Optional stage before adversarial training (BAGAN's autoencoder); default: nothing.
        ``ctx`` holds what it may use (training rows, device, seed, autocast, the rank-0
        broadcast); loop over ``ctx.steps(self.prepare_steps, "what")`` to show its progress."""

    @property
    def prepare_steps(self) -> int:
        """How many steps ``prepare`` takes; the trainer's progress bar and time estimate count
        them before the adversarial steps. Default 0."""
        return 0

    def augmented_critic(self, D: nn.Module, setting: str | None, n_images: int) -> nn.Module | None:
        """DiffAugment for this run's critic: ``D`` wrapped in an AugmentedCritic, or None when
        ``setting`` ("auto", a policy such as "color,translation,cutout", or "none") is off for
        ``n_images`` training images. The trainer calls it once per fit and gives the wrapper to
        both losses; a backend that augments its critic inputs itself can return None."""
        ops = resolve_policy(setting, n_images)
        return AugmentedCritic(D, ops) if ops else None

    # -- sampling
    def sample_latent(self, n: int, labels, generator=None, device=None) -> torch.Tensor:
        dev = generator.device if generator is not None else (device or "cpu")
        return torch.randn(n, self.config["latent_dim"], generator=generator, device=dev)

    def generate(self, G, z, labels) -> torch.Tensor:
        return G(z, labels) if self.conditional else G(z)

    def fake_batch(self, G, labels: torch.Tensor, ctx, *, grad: bool = True) -> torch.Tensor:
        """One fake per entry of ``labels`` (a real batch's labels, or labels of your own), on
        their device: the latent drawn from ``ctx.rng`` (so resume stays exact), then
        ``generate``; conditional backends get ``labels``. ``grad=False`` for a critic step."""
        lab = labels if self.conditional else None
        z = self.sample_latent(labels.shape[0], lab, generator=ctx.rng).to(labels.device)
        if grad:
            return self.generate(G, z, lab)
        with torch.no_grad():
            return self.generate(G, z, lab)

    def sampling_module(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self.generator

    def sample(self, n: int, labels: Any = None, generator: torch.Generator | None = None,
               batch_size: int = 256) -> torch.Tensor:
        """``n`` images in [0, 1], float32, on the CPU; batches run under ``torch.inference_mode``
        and the trainer's precision rule (``self.sample_precision``, "auto" by default)."""
        if not isinstance(n, int) or n < 0:
            raise ConfigError(f"n must be a non-negative integer, got {n!r}.")
        lab = self.resolve_labels(n, labels, generator)
        G = self.sampling_module()
        device = next(G.parameters()).device
        dtype = resolve_precision(self.sample_precision, device)
        was_training = G.training
        G.eval()
        out = []
        try:
            for start in range(0, n, batch_size):
                m = min(batch_size, n - start)
                lb = lab[start:start + m] if lab is not None else None
                z = self.sample_latent(m, lb, generator=generator)
                z = z.to(device)
                lb = lb.to(device) if lb is not None else None
                with torch.inference_mode(), autocast(device, dtype):
                    x = self.generate(G, z, lb).float()
                    out.append(signed_to_unit(x).cpu())
        finally:
            G.train(was_training)
        if not out:
            c, h, w = self.image_shape
            return torch.empty(0, c, h, w)
        # outside inference mode: an ordinary, contiguous tensor the caller may train on
        return torch.cat(out).contiguous()

    def fit(self, data: Any, **train_config: Any) -> AdversarialAugmenter:
        Trainer(self, **train_config).fit(data)
        return self

    def to(self, device):
        device = check_device(device)
        self.generator.to(device)
        if self._discriminator is not None:
            self._discriminator.to(device)
        if self.ema is not None:
            self.ema.to(device)
        return self

    # -- weights that travel (generator only; EMA weights when EMA was used)
    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().contiguous() for k, v in self.sampling_module().state_dict().items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self._ema = None
        load_strict(self.generator, state, what=f"{self.name} generator")
        self.keep_layout()  # fitting these weights later must not reshape them to the data
