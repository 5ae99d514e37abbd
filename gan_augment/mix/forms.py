"""Synthetic images in the pipeline's own form: PIL, HWC or CHW arrays, tensors, MONAI MetaTensors."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import numpy as np
import torch

from gan_augment.core.errors import DataError


@dataclass
class ImageForm:
    """What an image in the pipeline looks like, learned from one real item."""

    kind: str  # "pil", "numpy", "tensor"
    layout: str  # "chw", "hwc", "hw"
    channels: int
    size: tuple[int, int]
    dtype: Any
    scale: float  # value of white: 255 for uint8 / 0..255 floats, 1 for [0, 1] floats
    mode: str | None = None  # PIL mode
    meta: dict | None = None  # MetaTensor metadata of the probe (keys kept for collation)
    transposed: bool = False  # the loader swaps the file's rows and columns (MONAI's LoadImage)

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of the picture itself, before a loader's transposition."""
        return (self.size[1], self.size[0]) if self.transposed else self.size

    @classmethod
    def of(cls, img: Any, channel_first: bool | None = None) -> ImageForm:
        try:
            from PIL import Image
        except ImportError:  # pragma: no cover - pillow is a dependency
            Image = None
        if Image is not None and isinstance(img, Image.Image):
            ch = 1 if img.mode in ("L", "I", "F", "1") else 3
            return cls("pil", "hwc", ch, (img.height, img.width), np.uint8, 255.0, mode=img.mode)
        if torch.is_tensor(img):
            kind, arr, dtype = "tensor", img, img.dtype
            meta = dict(img.meta) if hasattr(img, "meta") else None
            floating = img.is_floating_point()
            top = float(img.max()) if img.numel() and floating else 0.0
        elif isinstance(img, np.ndarray):
            kind, arr, dtype, meta = "numpy", img, img.dtype, None
            floating = np.issubdtype(img.dtype, np.floating)
            top = float(img.max()) if img.size and floating else 0.0
        else:
            raise DataError(f"cannot make a synthetic image like a {type(img).__name__}: SyntheticMix "
                            "supports PIL images, numpy arrays and torch tensors (incl. MetaTensor).")
        shape = tuple(arr.shape)
        if len(shape) == 2:
            layout, ch, size = "hw", 1, shape
        elif len(shape) == 3:
            first = shape[0] in (1, 3)
            last = shape[-1] in (1, 3)
            cf = channel_first if channel_first is not None else (kind == "tensor" or not last) and first
            if cf and not first:
                raise DataError(f"expected a channel-first image, got shape {shape}.")
            layout = "chw" if cf else "hwc"
            ch, size = (shape[0], shape[1:]) if cf else (shape[-1], shape[:2])
            if ch not in (1, 3):
                raise DataError(f"images need 1 or 3 channels; got shape {shape}.")
        else:
            raise DataError(f"SyntheticMix handles 2-D images (H, W[, C]) only; got shape {shape}.")
        scale = 255.0 if (not floating or top > 1.5) else 1.0
        return cls(kind, layout, int(ch), (int(size[0]), int(size[1])), dtype, scale, meta=meta)

    def make(self, u8: torch.Tensor, meta_update: dict | None = None) -> Any:
        """One uint8 (C, H, W) image of ``channels`` and ``image_size`` -> this form."""
        if self.transposed:
            u8 = u8.transpose(1, 2)
        if self.kind == "pil":
            from PIL import Image

            arr = u8.permute(1, 2, 0).numpy()
            img = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr, "L" if arr.shape[2] == 1 else "RGB")
            return img.convert(self.mode) if self.mode not in ("L", "RGB") else img
        t = u8
        if self.layout == "hwc":
            t = t.permute(1, 2, 0)
        elif self.layout == "hw":
            t = t[0]
        t = t.contiguous()
        if self.kind == "numpy":
            arr = t.numpy()
            if np.issubdtype(np.dtype(self.dtype), np.floating):
                arr = arr.astype(self.dtype) * np.asarray(self.scale / 255.0, dtype=self.dtype)
            return arr.astype(self.dtype, copy=False)
        if self.dtype.is_floating_point:
            t = t.to(self.dtype) * (self.scale / 255.0)
        else:
            t = t.to(self.dtype)
        if self.meta is not None:
            from monai.data import MetaTensor

            meta = copy.deepcopy(self.meta)
            meta.update(meta_update or {})
            return MetaTensor(t, meta=meta)
        return t


def loader_transposes(path: Any, loaded: Any, form: ImageForm) -> bool:
    """Whether a loader hands over ``path``'s picture with rows and columns swapped, as MONAI's
    LoadImage does for PNG and JPEG by default: the file decoded by PIL is compared with the
    loaded array both ways. False when PIL cannot read the file (a volume format has no "rows")."""
    try:
        from PIL import Image

        with Image.open(path) as im:
            pic = np.asarray(im.convert("L" if form.channels == 1 else "RGB"), dtype=np.float64)
    except Exception:  # not a picture PIL knows: nothing to compare with
        return False
    arr = loaded.detach().cpu().numpy() if torch.is_tensor(loaded) else np.asarray(loaded)
    arr = np.asarray(arr, dtype=np.float64)
    if form.layout == "chw":
        arr = np.moveaxis(arr, 0, -1)
    elif form.layout == "hw":
        arr = arr[..., None]
    pic = pic[..., None] if pic.ndim == 2 else pic
    flipped = pic.transpose(1, 0, 2)
    if arr.shape != pic.shape or arr.shape != flipped.shape:  # not square: the shape tells
        return arr.shape == flipped.shape and arr.shape != pic.shape

    def gap(a: np.ndarray, b: np.ndarray) -> float:
        scale = lambda x: (x - x.min()) / (np.ptp(x) or 1.0)  # noqa: E731 - loaders may rescale
        return float(np.abs(scale(a) - scale(b)).mean())

    return gap(arr, flipped) < gap(arr, pic)


def _convert_label(value: Any, like: Any) -> Any:
    if torch.is_tensor(like):
        return torch.as_tensor(value, dtype=like.dtype).reshape(like.shape)
    if isinstance(like, np.ndarray):
        return np.asarray(value, dtype=like.dtype).reshape(like.shape)
    if isinstance(like, np.generic):
        return like.dtype.type(value)
    if isinstance(like, bool):
        return bool(value)
    if isinstance(like, Integral) and not isinstance(value, str):
        return int(value)
    return value
