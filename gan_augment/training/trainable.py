"""What the shared loop needs from a model, as a typed protocol: the loop is written against
this, not against :class:`~gan_augment.training.adversarial.AdversarialAugmenter`, so the base
class can call the loop without the loop importing it back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar, Protocol

import torch
from torch import nn

from gan_augment.core.adoption import Adoption
from gan_augment.core.errors import ConfigError


class PrepareContextLike(Protocol):  # the stage handle (training/stage.py), as a backend sees it
    device: torch.device
    images: torch.Tensor
    labels: torch.Tensor
    seed: int

    def steps(self, n: int, what: str) -> Iterator[int]: ...


class Trainable(Protocol):
    """A model the shared loop can train. ``AdversarialAugmenter`` provides all of it."""

    name: ClassVar[str]
    conditional: ClassVar[bool]
    train_defaults: ClassVar[dict[str, Any]]
    uses_double_backward: ClassVar[bool]
    training_summary: dict[str, Any]

    @property
    def generator(self) -> nn.Module: ...
    @property
    def discriminator(self) -> nn.Module: ...
    @property
    def ema(self) -> nn.Module | None: ...
    @property
    def num_classes(self) -> int: ...
    @property
    def prepare_steps(self) -> int: ...

    def adopt_data(self, data: Any) -> Adoption: ...
    def replace_networks(self, generator: nn.Module, discriminator: nn.Module) -> None: ...
    def attach_ema(self, ema: nn.Module | None) -> None: ...
    def prepare(self, ctx: PrepareContextLike) -> None: ...
    def augmented_critic(self, D: nn.Module, setting: str | None, n_images: int) -> nn.Module | None: ...
    def discriminator_loss(self, G, D, real, labels, ctx) -> tuple[torch.Tensor, dict]: ...
    def generator_loss(self, G, D, labels, ctx) -> tuple[torch.Tensor, dict]: ...
    def sample_latent(self, n: int, labels, generator=None, device=None) -> torch.Tensor: ...
    def generate(self, G: nn.Module, z: torch.Tensor, labels) -> torch.Tensor: ...
    def sampling_module(self) -> nn.Module: ...
    def get_config(self) -> dict[str, Any]: ...
    def save_pretrained(self, path: Any, *, card: bool = True) -> Any: ...


def protocol_members(proto: type) -> list[str]:
    """The names a protocol declares (attributes and methods), in declaration order."""
    names = list(getattr(proto, "__annotations__", {}))
    names += [n for n in vars(proto) if not n.startswith("_") and n not in names]
    return names


TRAINABLE_MEMBERS = tuple(protocol_members(Trainable))


def check_trainable(model: Any) -> None:
    """Refuse a model the loop cannot train, naming what it lacks (looked up on the class, so
    that the network properties are not built here; ``training_summary`` is set per instance)."""
    missing = [a for a in TRAINABLE_MEMBERS if not hasattr(type(model), a) and not hasattr(model, a)]
    if missing:
        raise ConfigError(f"the shared trainer trains adversarial backends (subclasses of "
                          f"gan_augment.AdversarialAugmenter), not {type(model).__name__}: it lacks "
                          f"{', '.join(missing)}.")
