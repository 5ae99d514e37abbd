"""The free alternatives to a generator, beside the arms of :mod:`.arms`, and the full arm list.

- ``real+classic+dup``: ``real+dup`` through the classic augmentation of ``real+classic``; the bar
  for ``real+classic+synthetic`` (same additions, same augmentation, copies instead of a generator).
- ``real+balanced-loss``: the real images, no additions, with class-weighted cross-entropy:
  weight ``N / (K * n_c)`` for class c (scikit-learn's "balanced"; the mean weight over the
  training images is 1, so the learning rate means the same as in the other arms).

They live in their own module so that the modules hashed into every stored run's key
(``store._RUN_CODE``: arms.py, train.py, data.py) stay unchanged and runs stored before these
arms existed stay valid; runs of these arms carry this module's own hash (``code_sha256``).

Why the loss needs no change to the training loop: ``train.fit`` computes
``cross_entropy(logits, target)``, and with a probability target ``w_y * onehot(y)`` that is
exactly ``w_y * cross_entropy(logits, y)``: the weighted loss, averaged over the batch.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gan_augment.core.contract import GenerativeAugmenter
from gan_augment.core.errors import ConfigError, DataError

from . import arms
from .arms import (
    ArrayImages,
    Choice,
    Duplicated,
    duplicate_rows,
    make_transform,
    planned_additions,
    synthetic_mix,
)
from .data import Images

FREE_ARMS = ("real+classic+dup", "real+balanced-loss")
ARMS = ("real", "real+classic", "real+balanced-loss", "real+dup", "real+classic+dup",
        "real+synthetic", "real+classic+synthetic")
#: arms that need the chosen generator and mix (their additions follow SyntheticMix's plan)
PLANNED_ARMS = ("real+dup", "real+classic+dup", *arms.SYNTHETIC_ARMS)
#: each synthetic arm's bar: the same additions as copies of real images, same augmentation
BAR = {"real+synthetic": "real+dup", "real+classic+synthetic": "real+classic+dup"}


@lru_cache(maxsize=1)
def code_sha256() -> str:
    """A hash of this module: part of the key of every run of a FREE_ARMS arm."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]


def balanced_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """``N / (K * n_c)`` per class (0 for a class with no images; K counts the classes present)."""
    counts = np.bincount(np.asarray(labels), minlength=num_classes).astype(float)
    present = counts > 0
    if not present.any():
        raise DataError("class weights need at least one training image.")
    w = np.zeros(num_classes)
    w[present] = counts.sum() / (present.sum() * counts[present])
    return w


class WeightedTargets(torch.utils.data.Dataset):
    """``base`` with each target ``y`` replaced by ``weights[y] * onehot(y)`` (float), so plain
    cross-entropy on it is class-weighted cross-entropy."""

    def __init__(self, base: torch.utils.data.Dataset, weights: np.ndarray):
        self.base = base
        self.weights = torch.as_tensor(weights, dtype=torch.float32)
        self.targets = base.targets
        self.class_names = base.class_names

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int):
        x, y = self.base[i]
        t = torch.zeros(len(self.weights))
        t[int(y)] = self.weights[int(y)]
        return x, t


def build(arm: str, images: Images, seed: int, augmenter: GenerativeAugmenter | None = None,
          choice: Choice | None = None) -> tuple[torch.utils.data.Dataset, dict[str, Any]]:
    """Any arm of ARMS: (dataset, info with ``items`` and ``added`` per class name)."""
    if arm not in ARMS:
        raise ConfigError(f"unknown arm {arm!r}; the arms are {', '.join(ARMS)}.")
    if arm not in FREE_ARMS:
        return arms.build_arm(arm, images, seed, augmenter, choice)
    channels = int(images.images.shape[1])
    base = ArrayImages(images, make_transform(arm == "real+classic+dup", channels, seed))
    added = dict.fromkeys(images.class_names, 0)
    if arm == "real+balanced-loss":
        w = balanced_weights(images.labels, len(images.class_names))
        data: torch.utils.data.Dataset = WeightedTargets(base, w)
        return data, {"items": len(data), "added": added,
                      "class_weights": {n: round(float(v), 6) for n, v in zip(images.class_names, w)}}
    if augmenter is None or choice is None:
        raise ConfigError(f"arm {arm!r} needs a generator and a choice of ratio/strategy (its additions "
                          "follow the synthetic arm's plan).")
    plan = planned_additions(synthetic_mix(base, augmenter, choice, seed))
    for label, n in plan.items():
        added[images.class_names[label]] = n
    data = Duplicated(base, duplicate_rows(images.labels, plan, seed))
    return data, {"items": len(data), "added": added}
