"""The one step that fits a model to its training data before it trains: the layout (grey or
RGB, the size) and the class names it takes from the data, the data converted to the model, and
the lines that say so. The shared trainer, ClassWise and so the CLI (which calls ``fit``) all
run it; nothing else decides these."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gan_augment.core.data import ImageDataset, as_dataset
from gan_augment.core.errors import ConfigError


@dataclass(frozen=True)
class Adoption:
    """What :func:`adopt_data` did. ``data`` is converted to the model's layout; ``lines`` are
    the ``data: ...`` line first, then notes; ``layout_adopted`` is True when create() left the
    size or channels to the data (the line is then news to a Python user)."""

    data: ImageDataset
    lines: list[str] = field(default_factory=list)
    layout_adopted: bool = False


def adopt_data(model: Any, data: Any, *, select_classes: bool = False) -> Adoption:
    """Fit ``model`` (a GenerativeAugmenter) to ``data``: refuse unlabelled data for a conditional
    model, take the size and channels create() left out, take the class names when it was given
    none (a conditional model all of them, an unconditional one a single class's), and refuse
    other class names, or with ``select_classes`` keep only the model's classes of the data."""
    ds = as_dataset(data)  # a path is read once
    deferred = bool(model.deferred_layout)
    line = model.adopt_layout(ds)  # refuses unlabelled data for a conditional model first
    ds = as_dataset(ds, image_size=model.config["image_size"], channels=model.config["channels"])
    lines = [line]
    names = list(ds.class_names)
    if model.config["class_names"] is None:
        if model.conditional or len(names) == 1:
            model.adopt_class_names(names)
        elif len(set(ds.labels.tolist())) > 1:
            lines.append(f"note: {model.name} is unconditional; training one model on all of {names}. "
                         "Pass --classes to train on one class.")
    elif names != model.class_names and (model.conditional or len(names) > 1):
        if not select_classes:
            raise ConfigError(f"the data's classes {names} differ from the model's {model.class_names}; "
                              "create the model with class_names=data.class_names, or select classes "
                              "with --classes.")
        ds = ds.select_classes(model.class_names)
    return Adoption(ds, lines, deferred)
