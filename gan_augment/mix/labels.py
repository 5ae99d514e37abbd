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


def _reader_labels(base) -> list | None:
    """timm's ImageDataset keeps its labels in its reader: ``reader.targets`` (images in tars) or
    the second field of ``reader.samples`` (folders, tar files)."""
    reader = getattr(base, "reader", None)
    if reader is None or isinstance(reader, str):
        return None
    targets = getattr(reader, "targets", None)
    if isinstance(targets, Sequence) and len(targets) == len(base):
        return list(targets)
    samples = getattr(reader, "samples", None)
    if isinstance(samples, Sequence) and samples and isinstance(samples[0], (tuple, list)) and len(samples[0]) >= 2:
        return [s[1] for s in samples]
    return None


def _iterable_error(base) -> DataError:
    return DataError(
        f"{type(base).__name__} is an iterable (streaming) dataset: SyntheticMix needs a map-style "
        "dataset with a length and an index (it mixes synthetic items in by index). For timm use a "
        "folder or tar dataset (create_dataset('', root=...) or 'torch/image_folder'), not "
        "tfds/, wds/ or hfids/."
    )


def dataset_labels(base, label_fn: Callable | None = None, label_key: str = "label") -> np.ndarray:
    """Labels of ``base`` without decoding an image: ``label_fn(base)``, ``.targets``
    (torchvision), ``.labels`` (MONAI ImageDataset, custom datasets), timm's ``.reader``, a MONAI
    list of dicts (``base.data[i][label_key]``), or a ``torch.utils.data.Subset`` of those."""
    if isinstance(base, torch.utils.data.IterableDataset):
        raise _iterable_error(base)
    if label_fn is not None:
        y = label_fn(base)
    elif isinstance(base, torch.utils.data.Subset):
        inner = dataset_labels(base.dataset, None, label_key)
        y = inner[np.asarray(base.indices, dtype=np.int64)]
    elif getattr(base, "targets", None) is not None:
        y = base.targets
    elif getattr(base, "labels", None) is not None:
        y = base.labels
    elif _reader_labels(base) is not None:
        y = _reader_labels(base)
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


def _names_by_index(mapping: Any) -> list[str] | None:
    """{name: index} with indices 0..n-1 -> names in index order (timm's class_to_idx)."""
    if not isinstance(mapping, Mapping) or not mapping:
        return None
    try:
        by_index = {int(i): str(n) for n, i in mapping.items()}
    except (TypeError, ValueError):
        return None
    if sorted(by_index) != list(range(len(by_index))):
        return None
    return [by_index[i] for i in range(len(by_index))]


def _names_from_dicts(data: Sequence[Mapping], label_key: str) -> list[str] | None:
    """Names of integer labels from a name key the items carry (MONAI's MedNISTDataset gives
    each dict a "class_name"), when every label has exactly one name."""
    name_key = next((k for k in NAME_KEYS if k in data[0]), None)
    if name_key is None or label_key not in data[0]:
        return None
    pairs = {}
    for d in data:
        label, name = d.get(label_key), d.get(name_key)
        if isinstance(label, (bool, str)) or not isinstance(label, (int, np.integer)) or not isinstance(name, str):
            return None
        if pairs.setdefault(int(label), name) != name:
            return None
    if sorted(pairs) != list(range(len(pairs))):
        return None
    return [pairs[i] for i in range(len(pairs))]


NAME_KEYS = ("class_name", "class_names", "label_name")


def dataset_class_names(base, label_key: str = "label") -> list[str] | None:
    """Names of ``base``'s integer labels, in label order, from what it carries: ``.class_names``
    or ``.classes`` (torchvision), timm's ``reader.class_to_idx``, or a name key of MONAI dicts."""
    for attr in ("class_names", "classes"):
        names = getattr(base, attr, None)
        if isinstance(names, Sequence) and not isinstance(names, str) and names:
            return [str(n) for n in names]
    if isinstance(base, torch.utils.data.Subset):
        return dataset_class_names(base.dataset, label_key)
    reader = getattr(base, "reader", None)
    for attr in ("class_to_idx", "class_name_to_idx"):
        names = _names_by_index(getattr(reader, attr, None)) if reader is not None else None
        if names:
            return names
    data = _monai_data(base)
    if data is not None:
        return _names_from_dicts(data, label_key)
    return None


def names_hint(labels: Sequence[int], model_names: Sequence[str]) -> str:
    """The one argument to add when a dataset has integer labels only: its class names."""
    n = max(int(v) for v in labels) + 1
    example = list(model_names) if len(model_names) == n else [f"<name of {i}>" for i in range(n)]
    return (f"The dataset's labels are integers 0..{n - 1} and it carries no class names: add "
            f"class_names={example!r} to SyntheticMix(...), the names of labels 0..{n - 1} in label "
            "order (e.g. the class folder names, sorted).")


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


def _plain(label: Any) -> Any:
    if torch.is_tensor(label) or isinstance(label, np.ndarray):
        return label.item() if (label.numel() if torch.is_tensor(label) else label.size) == 1 else label
    return label.item() if isinstance(label, np.generic) else label


def chosen_classes(classes: Any, augmenter: GenerativeAugmenter, class_names: Sequence[str] | None,
                   class_map: Mapping | None) -> set:
    """The dataset classes (labels and names) a transform acts on, each checked to be one the model
    can make; ``classes=None`` means every class, each checked when an item of it comes."""
    if isinstance(classes, (str, int)):
        classes = [classes]
    out = set()
    for c in classes:
        name = label_name(c, class_names)
        found, idx = match_class(c, name, augmenter, class_map)
        if not found and not isinstance(c, str) and class_names is None and not class_map:
            found, idx = 0 <= int(c) < len(augmenter.class_names), int(c)
        if not found or idx is None:
            raise ConfigError(f"classes= names {c!r}, which the model cannot make: it knows "
                              f"{augmenter.class_names}. Give classes the dataset classes to replace "
                              "(names or labels), or map them with class_map={'dataset class': 'model class'}.")
        out.update({c, name} if isinstance(c, str) else {int(c), name})
        if class_names is None and not class_map:  # then an int label is the model's class index
            out.add(idx)
    return out


def acts_on(label: Any, chosen: set | None, class_names: Sequence[str] | None) -> bool:
    """Whether an item of ``label`` is one to replace (``chosen`` None: every class)."""
    if chosen is None:
        return True
    label = _plain(label)
    return label in chosen or label_name(label, class_names) in chosen
