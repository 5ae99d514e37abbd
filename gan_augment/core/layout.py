"""The one grey/RGB/resize rule, for uint8 images read from files, float images a generator made,
and images a feature extractor takes: grey <-> RGB by ITU-R 601 luma (or by repeating the grey
channel), bilinear resizing with antialiasing. Everything that converts an image layout calls
:func:`convert`."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gan_augment.core.errors import DataError

LUMA = (0.299, 0.587, 0.114)


def convert(x: torch.Tensor, channels: int | None, size: tuple[int, int] | None) -> torch.Tensor:
    """A float NCHW batch with ``channels`` and ``size`` (H, W); None keeps what the batch has."""
    if channels is not None and x.shape[1] != channels:
        if channels == 1 and x.shape[1] == 3:
            x = (x * torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
        elif channels == 3 and x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        else:
            raise DataError(f"cannot turn {x.shape[1]}-channel images into {channels} channels; "
                            "images need 1 (grey) or 3 (RGB) channels.")
    if size is not None and tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=tuple(size), mode="bilinear", antialias=True, align_corners=False)
    return x


def _uint8(x: torch.Tensor) -> torch.Tensor:
    return x.round().clamp(0, 255).to(torch.uint8)


def match_layout(t: torch.Tensor, channels: int | None, size: int | None) -> torch.Tensor:
    """A uint8 NCHW batch with ``channels`` and ``size`` x ``size`` pixels; None keeps what the
    batch has. One rule for decoded files and in-memory arrays."""
    if channels == 3 and t.shape[1] == 1 and (not size or tuple(t.shape[2:]) == (size, size)):
        return t.expand(-1, 3, -1, -1)  # no arithmetic: stay uint8
    if (channels is None or channels == t.shape[1]) and (not size or tuple(t.shape[2:]) == (size, size)):
        return t
    return _uint8(convert(t.float(), channels, (size, size) if size else None))


def resize_uint8(t: torch.Tensor, size: int) -> torch.Tensor:
    """Resize a uint8 NCHW batch (bilinear, antialiased), back to uint8."""
    return _uint8(convert(t.float(), None, (size, size)))


def fit_images(x: torch.Tensor, channels: int, size: tuple[int, int]) -> torch.Tensor:
    """float [0, 1] (n, C, H, W) -> uint8 (n, channels, *size): convert channels and resize."""
    return _uint8(convert(x, channels, size).clamp(0, 1) * 255)


def to_float01(x: torch.Tensor, channels: int, size: int) -> torch.Tensor:
    """Any image batch (uint8 or float in [0, 1]) -> float [0, 1] with ``channels`` and size x size:
    what a feature extractor takes."""
    if x.ndim != 4:
        raise DataError(f"images must be a batch (N, C, H, W), got shape {tuple(x.shape)}.")
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    return convert(x, channels, (size, size))
