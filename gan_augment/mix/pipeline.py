"""What a dataset does to its items, so a synthetic item can go through the same steps as a real
one: which attribute holds the transform, which of its first steps load files (a synthetic image
has no file, so it joins the pipeline after them), and a real item after those steps only.

Frameworks name these things differently: torchvision, timm and MONAI's datasets call the
transform ``transform``; MONAI's MedNIST tutorial dataset calls its Compose ``transforms``;
MONAI's ``ImageDataset`` loads with ``.loader`` before its ``transform``; a MONAI ``Compose``
often starts with ``LoadImage(d)``, and runs from any step on (``compose(x, start=k)``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from gan_augment.core.errors import DataError

#: MONAI transforms that turn a file path into an image (LoadImageD is an alias of LoadImaged).
LOADERS = ("LoadImage", "LoadImaged")
#: Where a dataset whose transform loads files keeps the paths (MONAI ImageDataset, tutorials).
FILE_LISTS = ("image_files", "files", "image_paths", "paths")


def _is_loader(step: Any) -> bool:
    return any(c.__name__ in LOADERS and c.__module__.startswith("monai") for c in type(step).__mro__)


def _is_monai_compose(tf: Any) -> bool:
    return any(c.__name__ == "Compose" and c.__module__.startswith("monai") for c in type(tf).__mro__)


def transform_attr(ds: Any) -> str | None:
    """The attribute holding ``ds``'s item transform, or None. torchvision's ``transforms`` (a
    StandardTransform wrapping ``transform`` and ``target_transform``) is not a second one."""
    if getattr(ds, "transform", None) is not None:
        return "transform"
    tf = getattr(ds, "transforms", None)
    if callable(tf) and type(tf).__name__ != "StandardTransform":
        return "transforms"
    return None


def loader_count(tf: Any) -> int:
    """How many of a MONAI Compose's first steps are file loaders (0 for anything else)."""
    steps = getattr(tf, "transforms", None)
    if not _is_monai_compose(tf) or not isinstance(steps, (list, tuple)):
        return 0
    n = 0
    while n < len(steps) and _is_loader(steps[n]):
        n += 1
    return n


@dataclass
class ComposeSlice:
    """Steps ``start:end`` of a MONAI Compose, run by the Compose itself (so its random state,
    ``map_items`` and lazy settings are the ones real items get). Picklable for workers."""

    compose: Any
    start: int = 0
    end: int | None = None

    def __call__(self, x: Any) -> Any:
        return self.compose(x, start=self.start, end=self.end)


def split_loaders(tf: Callable | None) -> tuple[Callable | None, Callable | None]:
    """(loading steps, the rest): a synthetic image skips the first and goes through the second."""
    if _is_loader(tf):  # the whole transform is a loader
        return tf, None
    k = loader_count(tf)
    if k == 0:
        return None, tf
    return ComposeSlice(tf, 0, k), ComposeSlice(tf, k, None)


def unwrap(ds: Any, index: int) -> tuple[Any, int]:
    """The dataset that really holds item ``index`` of ``ds`` (through Subsets) and its index there."""
    while isinstance(ds, torch.utils.data.Subset):
        ds, index = ds.dataset, int(ds.indices[index])
    return ds, index


def file_list(ds: Any) -> Sequence | None:
    for attr in FILE_LISTS:
        files = getattr(ds, attr, None)
        if isinstance(files, Sequence) and not isinstance(files, str) and len(files) == len(ds):
            return files
    return None


@dataclass
class Steps:
    """How items of one dataset are made: ``load`` (None: nothing to load), then ``rest``."""

    load: Callable | None
    rest: Callable | None
    target: Callable | None
    attr: str | None  # the dataset attribute holding the transform (None: given to SyntheticMix)


def dataset_steps(ds: Any, transform: Callable | None = None,
                  target_transform: Callable | None = None) -> Steps:
    """The steps of ``ds``'s items, or of ``transform`` given to SyntheticMix (applied on top of
    ``ds``'s own raw items)."""
    if transform is not None or target_transform is not None:
        load, rest = split_loaders(transform)
        return Steps(load, rest, target_transform, None)
    owner, _ = unwrap(ds, 0) if len(ds) else (ds, 0)
    attr = transform_attr(owner)
    tf = getattr(owner, attr) if attr else None
    target = getattr(owner, "target_transform", None) or getattr(owner, "label_transform", None)
    own_loader = getattr(owner, "loader", None)
    if callable(own_loader) and file_list(owner) is not None:  # MONAI ImageDataset
        return Steps(own_loader, tf, target, attr)
    load, rest = split_loaders(tf)
    return Steps(load, rest, target, attr)


def loaded_item(ds: Any, index: int, steps: Steps, own_transform: bool) -> tuple[Any, Any]:
    """(real item ``index`` after the loading steps only, what went into them: a path, a dict of
    paths, or None when nothing was loaded).

    ``own_transform``: the transform was given to SyntheticMix, so ``ds[index]`` is already raw."""
    if own_transform:
        raw = ds[index]
        return (steps.load(raw), raw) if steps.load is not None else (raw, None)
    owner, i = unwrap(ds, index)
    data = getattr(owner, "data", None)
    if isinstance(data, Sequence) and data and isinstance(data[0], Mapping):  # MONAI Dataset family
        raw = copy.copy(data[i])
        return (steps.load(raw), raw) if steps.load is not None else (raw, None)
    if steps.load is not None:
        files = file_list(owner)
        if files is None:
            raise DataError(
                f"{type(owner).__name__}'s transform loads files (it starts with LoadImage), but "
                f"SyntheticMix cannot find their paths: keep them in .{FILE_LISTS[0]} (as MONAI's "
                "tutorials do), or give SyntheticMix the transform with transform=...")
        labels = getattr(owner, "labels", None)
        label = labels[i] if labels is not None else None
        return (steps.load(files[i]), label), files[i]
    raw = copy.copy(owner)
    for attr in ("transform", "target_transform", "transforms", "label_transform"):
        if getattr(raw, attr, None) is not None:
            setattr(raw, attr, None)
    return raw[i], None
