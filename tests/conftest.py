"""Shared fixtures: tiny real-format datasets so tests run in seconds on 2 CPU cores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def pytest_configure(config):
    torch.set_num_threads(min(2, torch.get_num_threads()))


def imbalanced_pbc_rows(z) -> np.ndarray:
    """Rows of an opened PBC .npz for a small, class-stratified, imbalanced slice: per class
    6 + c % 3 training and 2 + c % 3 test images (seed 0), sorted."""
    rng = np.random.default_rng(0)
    keep = []
    for split, per_class in (("train", 6), ("test", 2)):
        for c in range(len(z["class_names"])):
            rows = np.nonzero((z["split"] == split) & (z["labels"] == c))[0]
            keep += rng.choice(rows, per_class + c % 3, replace=False).tolist()
    return np.sort(keep)


@pytest.fixture(autouse=True)
def _own_backend_index(tmp_path_factory, monkeypatch):
    """Each test lists backends from its own index folder: tests that register plugins at run
    time never see a listing cached by another test (or by the user's own ~/.cache)."""
    monkeypatch.setenv("GAN_AUGMENT_CACHE", str(tmp_path_factory.mktemp("cache")))


def make_two_class_images(n_per_class: int = 24, size: int = 16, seed: int = 0):
    """Dark discs (class 0) and bright squares (class 1), uint8 (N, H, W, 3)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    imgs, labels = [], []
    for k in range(2):
        for _ in range(n_per_class):
            img = np.full((size, size, 3), 128, dtype=np.float32)
            c = rng.integers(size // 3, 2 * size // 3, size=2)
            r = rng.integers(size // 5, size // 3)
            if k == 0:
                mask = (yy - c[0]) ** 2 + (xx - c[1]) ** 2 <= r**2
                img[mask] = 20
            else:
                mask = (abs(yy - c[0]) <= r) & (abs(xx - c[1]) <= r)
                img[mask] = 235
            img += rng.normal(0, 5, img.shape)
            imgs.append(np.clip(img, 0, 255).astype(np.uint8))
            labels.append(k)
    return np.stack(imgs), np.array(labels, dtype=np.int64)


@pytest.fixture
def tiny_npz(tmp_path) -> Path:
    """An .npz in the shared-data format: images, labels, class_names, split."""
    images, labels = make_two_class_images()
    split = np.array(["train", "test"] * (len(labels) // 2))
    path = tmp_path / "tiny.npz"
    np.savez_compressed(path, images=images, labels=labels,
                        class_names=np.array(["disc", "square"]), split=split)
    return path


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED / "pbc_bloodcell_64.npz").exists():
        pytest.skip("../shared/data is not present")
    return SHARED
