"""Which real items an epoch serves as synthetic images (``replace=p``), and which real items
stand in for the added ones once the synthetic epochs are over (``synthetic_epochs=E``).

Both are pure functions of ``(seed, epoch, class)``, so every DataLoader worker and every run
agrees without talking to the others, like the bank."""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

from gan_augment.core.errors import ConfigError
from gan_augment.mix.draws import chunk_seed

REPLACE_TAG, STAND_IN_TAG = 0x5E9A, 0xD0B5


def check_replace(value: object) -> float:
    """``replace`` is a share of each class's real items, in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, Real) or not 0.0 <= float(value) <= 1.0:
        raise ConfigError(f"replace={value!r} is not a share; give a number in [0, 1] (e.g. replace=0.2: "
                          "a fifth of every class's real items served as synthetic images each epoch).")
    return float(value)


def check_synthetic_epochs(value: object) -> int | None:
    """``synthetic_epochs`` is None (synthetic items in every epoch) or a number of epochs >= 1."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"synthetic_epochs={value!r} must be None (every epoch) or a number of epochs >= 1 "
                          "(e.g. synthetic_epochs=10: synthetic images in epochs 0-9, real ones after).")
    return int(value)


def replaced_count(n_real: int, share: float) -> int:
    """round(share * n_real), halves rounded up: the exact number replaced each epoch."""
    return min(n_real, int(math.floor(share * n_real + 0.5)))


def class_permutation(tag: int, seed: int, epoch: int, row: int, n: int) -> np.ndarray:
    return np.random.default_rng(chunk_seed(tag, seed, epoch, row)).permutation(n)


def replace_slots(class_rows: list[np.ndarray], counts: list[int], n_real: int, seed: int,
                  epoch: int) -> np.ndarray:
    """Per real item, its place in its class's replacement bank, or -1 if it is served as is:
    a seeded permutation of each class's items picks exactly ``counts[row]`` of them."""
    slots = np.full(n_real, -1, dtype=np.int64)
    for row, (idx, k) in enumerate(zip(class_rows, counts)):
        if k:
            chosen = idx[class_permutation(REPLACE_TAG, seed, epoch, row, len(idx))[:k]]
            slots[chosen] = np.arange(k)
    return slots


def stand_ins(idx: np.ndarray, n_added: int, seed: int, epoch: int, row: int) -> np.ndarray:
    """Real items of one class that serve its ``n_added`` added items: the class's items in a
    seeded order, cycled, so each is used as evenly as possible (random over-sampling)."""
    if n_added == 0:
        return np.zeros(0, dtype=np.int64)
    order = idx[class_permutation(STAND_IN_TAG, seed, epoch, row, len(idx))]
    return order[np.arange(n_added) % len(order)]
