"""The harness's data: the training split (with the user's subset), the stratified validation
split carved from it, and content hashes that key stored runs.

The test split is not touched here: the runner opens it only after every choice is fixed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gan_augment.core.data import ImageDataset, load_dataset
from gan_augment.core.errors import ConfigError, DataError
from gan_augment.core.serialization import sha256_file


@dataclass
class Images:
    """uint8 images (N, C, H, W), integer labels and class names, held in memory."""

    images: torch.Tensor
    labels: np.ndarray
    class_names: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, rows: np.ndarray) -> Images:
        rows = np.asarray(rows, dtype=np.int64)
        return Images(self.images[torch.from_numpy(rows)], self.labels[rows], self.class_names)

    def counts(self) -> dict[str, int]:
        c = np.bincount(self.labels, minlength=len(self.class_names))
        return {n: int(k) for n, k in zip(self.class_names, c)}

    def sha256(self) -> str:
        """Content hash: pixels, labels and class names (what a run actually sees)."""
        h = hashlib.sha256()
        h.update(self.images.contiguous().numpy().tobytes())
        h.update(np.asarray(self.labels, dtype=np.int64).tobytes())
        h.update("\n".join(self.class_names).encode())
        return h.hexdigest()


def sha256_source(path: str | Path) -> str:
    """sha256 of a data file; for a folder, of every file's relative path and bytes, in order."""
    p = Path(path).expanduser()
    if p.is_file():
        return sha256_file(p)
    h = hashlib.sha256()
    for f in sorted(q for q in p.rglob("*") if q.is_file()):
        h.update(str(f.relative_to(p)).encode())
        h.update(sha256_file(f).encode())
    return h.hexdigest()


def rows_sha256(rows: Sequence[int] | np.ndarray) -> str:
    return hashlib.sha256(np.asarray(rows, dtype=np.int64).tobytes()).hexdigest()


def open_split(source: str | Path | ImageDataset, split: str | None) -> ImageDataset:
    """A path through ``load_dataset(path, split=...)``; an ImageDataset as given."""
    if isinstance(source, ImageDataset):
        return source
    if isinstance(source, (str, Path)):
        return load_dataset(source, split=split)
    raise ConfigError(f"data must be a path (.npz, ImageFolder, .csv) or a gan_augment.ImageDataset, "
                         f"got {type(source).__name__}.")


def to_images(ds: ImageDataset, image_size: int | None) -> Images:
    """Decode once; resize (bilinear, antialiased) when ``image_size`` differs from the data's."""
    if len(ds) == 0:
        raise DataError(f"{ds.source}: the split is empty; check the split names.")
    x = ds.tensor()
    if image_size is not None and tuple(x.shape[2:]) != (image_size, image_size):
        x = F.interpolate(x.float(), size=(image_size, image_size), mode="bilinear", antialias=True,
                          align_corners=False).round().clamp(0, 255).to(torch.uint8)
    return Images(x.contiguous(), np.asarray(ds.labels, dtype=np.int64), list(ds.class_names))


def cut_rows(labels: np.ndarray, class_names: Sequence[str], keep: Mapping[str, int],
             seed: int = 0) -> np.ndarray:
    """Rows kept when each named class is cut to ``keep[name]`` images: for each class,
    ``np.random.default_rng(seed).choice(its rows, size=n, replace=False)`` (a fresh generator
    per class), so one cut reproduces the benchmark's hard setting exactly."""
    labels = np.asarray(labels)
    rows = [np.arange(len(labels))]
    keep_mask = np.ones(len(labels), dtype=bool)
    for name, n in keep.items():
        if name not in class_names:
            raise ConfigError(f"cannot cut class {name!r}: the classes are {', '.join(class_names)}.")
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
            raise ConfigError(f"cut {name}={n!r}: give a number of images >= 1 to keep.")
        idx = np.nonzero(labels == class_names.index(name))[0]
        if n >= len(idx):
            continue
        kept = np.random.default_rng(seed).choice(idx, size=int(n), replace=False)
        keep_mask[idx] = False
        keep_mask[kept] = True
    return rows[0][keep_mask]


def training_rows(train: ImageDataset, subset: Sequence[int] | Callable | None,
                  cut: Mapping[str, int] | None, max_per_class: int | None) -> np.ndarray:
    """Rows of the training split the arms use: ``subset`` (rows, or callable(train) -> rows),
    then ``cut`` (class -> images kept), then ``max_per_class`` (every class cut, seed 0)."""
    labels = np.asarray(train.labels)
    rows = np.arange(len(labels))
    if subset is not None:
        got = subset(train) if callable(subset) else subset
        rows = np.asarray(got, dtype=np.int64).reshape(-1)
        if len(rows) == 0 or rows.min() < 0 or rows.max() >= len(labels) or len(set(rows.tolist())) != len(rows):
            raise ConfigError(f"train_subset must give distinct row indices in 0..{len(labels) - 1} of the "
                                 "training split (a callable gets the split and returns them).")
        rows = np.sort(rows)
    if cut:
        rows = rows[cut_rows(labels[rows], train.class_names, cut)]
    if max_per_class is not None:
        if max_per_class < 2:
            raise ConfigError(f"max_train_per_class must be >= 2 (a class needs a training and a "
                                 f"validation image), got {max_per_class}.")
        rows = rows[cut_rows(labels[rows], train.class_names, dict.fromkeys(train.class_names, max_per_class))]
    return rows


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit rows, validation rows): per class ``round(fraction * n)`` validation images, at least
    one and never all of them when the class has two or more; a one-image class stays in fit."""
    if not 0 < fraction < 1:
        raise ConfigError(f"val_fraction must be between 0 and 1, got {fraction}.")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    fit, val = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.nonzero(labels == c)[0])
        n_val = min(max(1, round(fraction * len(idx))), len(idx) - 1) if len(idx) >= 2 else 0
        val.append(idx[:n_val])
        fit.append(idx[n_val:])
    return np.sort(np.concatenate(fit)), np.sort(np.concatenate(val))


def describe_source(source: Any) -> dict[str, Any]:
    """Provenance of a data source: a file's path and sha256, or an in-memory dataset's content hash."""
    if isinstance(source, (str, Path)):
        return {"path": str(source), "sha256": sha256_source(source)}
    if isinstance(source, ImageDataset):
        return {"path": f"in-memory ImageDataset ({source.source})",
                "sha256": Images(source.tensor(), source.labels, source.class_names).sha256()}
    return {"path": repr(source), "sha256": None}
