"""Seeded synthetic draws: one image for the transforms, reproducible seeds for the bank's chunks."""

from __future__ import annotations

from numbers import Real
from typing import Any

import numpy as np
import torch

from gan_augment.core.contract import GenerativeAugmenter
from gan_augment.core.errors import ConfigError
from gan_augment.core.layout import fit_images
from gan_augment.mix.filters import draw_accepted


def synthesize(augmenter: GenerativeAugmenter, model_class: int, seed: int, channels: int,
               size: tuple[int, int], filter: Any = None) -> torch.Tensor:
    """One uint8 (channels, *size) image of ``model_class`` from a generator seeded with ``seed``
    (the first one ``filter`` accepts, when given)."""
    g = torch.Generator().manual_seed(int(seed))
    if filter is not None:
        x = draw_accepted(augmenter, model_class, 1, g, filter)
    else:
        x = augmenter.sample(1, labels=model_class if augmenter.conditional else None, generator=g)
    if not augmenter.conditional and model_class != 0:
        raise ConfigError(f"{augmenter.name!r} is unconditional and makes only {augmenter.class_names[0]!r}.")
    return fit_images(x.float().cpu(), channels, size)[0]



def chunk_seed(*parts: int) -> int:
    """A seed that depends only on ``parts`` (same in every process and on every platform)."""
    return int(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(1, np.uint64)[0] >> 1)


def resolve_augmenter(augmenter: GenerativeAugmenter | str | None, model: str | None):
    """(loaded augmenter or None, model reference string or None)."""
    if isinstance(augmenter, GenerativeAugmenter):
        return augmenter, model or getattr(augmenter, "name_or_path", None)
    if augmenter is None and model is None:
        raise ConfigError(
            "GenerativeReplace got no model. Give GenerativeReplace('short-name', 'owner/repo' or "
            "'folder') or an augmenter. A pipeline serialised with A.to_dict from a transform that held "
            "an unnamed in-memory model has model=None (weights are never pickled): save the model "
            "(aug.save_pretrained('folder')) and build the transform with model='folder'.")
    if augmenter is not None and not isinstance(augmenter, str):
        raise ConfigError(f"augmenter must be a GenerativeAugmenter or a model name/path, got "
                          f"{type(augmenter).__name__}.")
    return None, str(augmenter if augmenter is not None else model)


def check_probability(name: str, value: object, owner: str) -> float:
    """A replacement probability in [0, 1], or a ConfigError (MONAI would silently clip it)."""
    if isinstance(value, bool) or not isinstance(value, Real) or not 0.0 <= float(value) <= 1.0:
        raise ConfigError(f"{owner}: {name}={value!r} is not a probability; give a number in [0, 1] "
                          f"(e.g. {name}=0.3: about 30% of images replaced).")
    return float(value)
