"""Test doubles for the adapters: a tiny class-conditional augmenter whose images say which
class they are and depend only on the torch generator (so determinism tests can fail)."""

from __future__ import annotations

import numpy as np
import torch

import gan_augment as ga


class FakeConditional(ga.GenerativeAugmenter):
    """Class c gives images near c / num_classes plus generator noise; counts its forward passes."""

    name = "fake-conditional"
    conditional = True
    defaults = {}

    def __init__(self, **config):
        super().__init__(**config)
        self.calls = 0

    def fit(self, data, **train_config):
        return self

    @torch.no_grad()
    def sample(self, n, labels=None, generator=None):
        lab = self.resolve_labels(n, labels, generator)
        self.calls += 1
        c, h, w = self.image_shape
        base = (lab.float() + 0.5) / self.num_classes
        noise = torch.rand(n, c, h, w, generator=generator) * 0.2 - 0.1
        return (base.view(n, 1, 1, 1) + noise).clamp(0, 1)

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


def class_of(img_mean_01: float, num_classes: int) -> int:
    """Invert FakeConditional's class encoding from an image's mean intensity in [0, 1]."""
    return int(np.clip(np.floor(img_mean_01 * num_classes), 0, num_classes - 1))


def imbalanced_dataset(counts, size=16, channels=3, names=None, seed=0):
    """An ImageDataset with ``counts[i]`` images of class i (random uint8 pixels)."""
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.full(n, i) for i, n in enumerate(counts)]).astype(np.int64)
    images = rng.integers(0, 256, (len(labels), size, size, channels), dtype=np.uint8)
    names = names or [f"class{i}" for i in range(len(counts))]
    return ga.ImageDataset(images, labels, names)
