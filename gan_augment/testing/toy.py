"""Tiny datasets for tests: small enough to train on in seconds, with a signal a model can learn."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gan_augment.core.contract import GenerativeAugmenter
from gan_augment.core.data import ImageDataset

BackendRef = str | Callable[..., GenerativeAugmenter]


def toy_two_class_data(n_per_class: int = 8, image_size: int = 16, channels: int = 1, seed: int = 0,
                       classes: tuple[str, ...] = ("dark", "bright")) -> ImageDataset:
    """Dark discs on a dark ground (class 0) and bright squares on a bright ground (class 1).

    The classes differ in mean brightness, so a simple rule can tell them apart. Shapes and
    positions vary, so a generator has something to learn. With one class name, only the first
    kind of image is made.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:image_size, :image_size]
    images, labels = [], []
    for k in range(len(classes)):
        for _ in range(n_per_class):
            r = rng.uniform(0.2, 0.35) * image_size
            cy, cx = rng.uniform(r, image_size - r, size=2)
            if k == 0:
                ground, shape = rng.uniform(20, 50), rng.uniform(80, 110)
                mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= r ** 2
            else:
                ground, shape = rng.uniform(170, 200), rng.uniform(230, 255)
                mask = (np.abs(yy - cy) <= r) & (np.abs(xx - cx) <= r)
            img = np.where(mask, shape, ground) + rng.normal(0, 4, size=mask.shape)
            images.append(np.repeat(img[:, :, None], channels, axis=2))
            labels.append(k)
    arr = np.clip(np.stack(images), 0, 255).round().astype(np.uint8)
    return ImageDataset(arr, np.array(labels), list(classes), image_size, channels, "toy")
