"""A dataset's labels and class names, read without decoding its images, and their match to a
model's classes."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from gan_augment.core.contract import GenerativeAugmenter
from gan_augment.core.errors import ConfigError, DataError


def _monai_data(base) -> list | None:
    data = getattr(base, "data", None)
    if isinstance(data, Sequence) and data and isinstance(data[0], Mapping):
        return data
    return None


def dataset_labels(base, label_fn: Callable | None = None, label_key: str = "label") -> np.ndarray:
    """Labels of ``base`` from ``label_fn(base)``, ``.targets``, ``.labels``, a MONAI list of
    dicts (``base.data[i][label_key]``) or a ``torch.utils.data.Subset`` of those."""
    if label_fn is not None:
        y = label_fn(base)
    elif isinstance(base, torch.utils.data.Subset):
        inner = dataset_labels(base.dataset, None, label_key)
        y = inner[np.asarray(base.indices, dtype=np.int64)]
    elif getattr(base, "targets", None) is not None:
        y = base.targets
    elif getattr(base, "labels", None) is not None:
        y = base.labels
    elif _monai_data(base) is not None:
        data = _monai_data(base)
        if label_key not in data[0]:
            raise DataError(f"the dataset's dicts have no {label_key!r} key (keys: {sorted(data[0])}); "
                            "pass label_key=... or label_fn=lambda ds: [...].")
        y = [d[label_key] for d in data]
    else:
        raise DataError(
            f"cannot find the labels of {type(base).__name__} without decoding its images: give it a "
            "`.targets` or `.labels` attribute, use a MONAI list of dicts, or pass "
            "label_fn=lambda ds: <sequence of labels>."
        )
    if torch.is_tensor(y):
        y = y.cpu().numpy()
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]  # MedMNIST stores labels as (N, 1)
    if y.ndim != 1 or len(y) != len(base):
        raise DataError(f"labels must be one per item: got shape {y.shape} for {len(base)} items. "
                        "Multi-label targets are not supported by SyntheticMix.")
    if y.dtype.kind in "iu":
        y = y.astype(np.int64)
    elif y.dtype.kind not in "U":
        raise DataError(f"labels must be integers or strings, got dtype {y.dtype}.")
    return y


def dataset_class_names(base) -> list[str] | None:
    for attr in ("class_names", "classes"):
        names = getattr(base, attr, None)
        if isinstance(names, Sequence) and not isinstance(names, str) and names:
            return [str(n) for n in names]
    if isinstance(base, torch.utils.data.Subset):
        return dataset_class_names(base.dataset)
    return None


def label_name(label: Any, names: Sequence[str] | None) -> str:
    """A label's class name: strings are names; ints index ``names``, or are their own name."""
    if isinstance(label, str):
        return label
    if names is not None and 0 <= int(label) < len(names):
        return names[int(label)]
    return str(label)


def match_class(label: Any, name: str, augmenter: GenerativeAugmenter,
                class_map: Mapping | None) -> tuple[bool, int | None]:
    """(found, model class index) for a dataset class; class_map value None means skip it."""
    class_map = class_map or {}
    for key in (name, label):
        if key in class_map:
            target = class_map[key]
            if target is None:
                return True, None
            return True, augmenter.class_index(target)
    if name in augmenter.class_names:
        return True, augmenter.class_names.index(name)
    return False, None


# ---------------------------------------------------------------------------------------------
# synthetic images in the pipeline's own form
# ---------------------------------------------------------------------------------------------


def class_for(augmenter: GenerativeAugmenter, label: Any, class_names: Sequence[str] | None,
              class_map: Mapping | None) -> int:
    """The augmenter class for an item's label: by name (class_names names int labels), through
    class_map, or, with neither, an int label is the augmenter's own class index."""
    if torch.is_tensor(label) or isinstance(label, np.ndarray):
        n = label.size if isinstance(label, np.ndarray) else label.numel()
        if n != 1:
            raise DataError(f"the label must be one class, got an array of shape {tuple(label.shape)}.")
        label = label.item()
    if isinstance(label, np.generic):
        label = label.item()
    if class_names is None and not class_map and not isinstance(label, str):
        return augmenter.class_index(int(label))
    name = label_name(label, class_names)
    found, idx = match_class(label, name, augmenter, class_map)
    if not found or idx is None:
        raise ConfigError(f"the model cannot make class {name!r}: it knows {augmenter.class_names}. "
                          "Pass class_map={'dataset class': 'model class'}.")
    return idx
