"""Where the validation and test images come from, checked against the training images.

By default validation is carved from the training split and the test split is the data file's own.
An external file (``val=`` / ``test=``, CLI ``--val-data`` / ``--test-data``) gives far more
minority images to choose on and to measure with (PBC: 150 and 450 basophils per file instead of
3 and 48); it must list the same classes and hold none of the training images.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from gan_augment.core.data import ImageDataset
from gan_augment.core.errors import DataError
from gan_augment.training.precision import describe as describe_precision
from gan_augment.training.precision import resolve_precision

from .data import Images, describe_source, open_split, to_images

DTYPE_NAMES = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


def resolve(precision: str, device: torch.device) -> tuple[str, dict[str, str]]:
    """"auto" -> the trainer's rule (bf16 only where the hardware computes it natively, else fp32);
    returns (the format used, what results.json records about the choice)."""
    dtype = resolve_precision(precision, device)
    used = DTYPE_NAMES[dtype]
    return used, {"asked": precision, "used": used, "why": describe_precision(dtype, precision, device)}


def counts_text(counts: Mapping[str, int]) -> str:
    """"1200 images (basophil 150, eosinophil 150, ...)"."""
    return f"{sum(counts.values())} images (" + ", ".join(f"{k} {v}" for k, v in counts.items()) + ")"


def check_like(other: Images, names: list[str], channels: int, what: str) -> None:
    if other.class_names != names:
        raise DataError(f"the {what}'s classes {other.class_names} differ from the training split's "
                        f"{names}; both must list the same classes in the same order.")
    if other.images.shape[1] != channels:
        raise DataError(f"the {what}'s channels differ from the training split's.")


def check_disjoint(train: Images, other: Images, what: str, source: Any) -> None:
    """An external validation or test file must hold no training image (byte-identical pixels)."""
    seen = {bytes(x) for x in train.images.numpy()}
    same = sum(bytes(x) in seen for x in other.images.numpy())
    if same:
        raise DataError(f"{same} of the {len(other)} {what} images from {describe(source)} are also training "
                        "images; use a file whose rows are not in the training split.")


def describe(source: Any) -> str:
    return f"in-memory ImageDataset ({source.source})" if isinstance(source, ImageDataset) else str(source)


def load_external(source: Any, split: str, size: int, train: Images, what: str) -> Images:
    """Another file's ``split`` rows, resized to the training size, checked against the training images."""
    images = to_images(open_split(source, split), size)
    check_like(images, train.class_names, int(train.images.shape[1]), what)
    check_disjoint(train, images, what, source)
    return images


def provenance(source: Any, images: Images) -> dict[str, Any]:
    if isinstance(source, ImageDataset):
        return {"path": f"in-memory ImageDataset ({source.source})", "sha256": images.sha256()}
    return describe_source(source)
