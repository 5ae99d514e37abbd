"""The one grey/RGB/resize rule, for uint8 images read from files and float images a generator made."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gan_augment.core.errors import DataError


def match_layout(t: torch.Tensor, channels: int | None, size: int | None) -> torch.Tensor:
    """A uint8 NCHW batch with ``channels`` (grey <-> RGB, ITU-R 601 luma) and ``size`` x ``size``
    pixels; None keeps what the batch has. One rule for decoded files and in-memory arrays."""
    if channels == 3 and t.shape[1] == 1:
        t = t.expand(-1, 3, -1, -1)
    elif channels == 1 and t.shape[1] == 3:
        w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        t = (t.float() * w).sum(1, keepdim=True).round().to(torch.uint8)
    if size and tuple(t.shape[2:]) != (size, size):
        t = resize_uint8(t, size)
    return t


def resize_uint8(t: torch.Tensor, size: int) -> torch.Tensor:
    """Resize a uint8 NCHW batch with antialiasing (bilinear), back to uint8."""
    x = F.interpolate(t.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8)




def fit_images(x: torch.Tensor, channels: int, size: tuple[int, int]) -> torch.Tensor:
    """float [0, 1] (n, C, H, W) -> uint8 (n, channels, *size): resize and convert channels."""
    if x.shape[1] != channels:
        if channels == 1:
            w = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype).view(1, 3, 1, 1)
            x = (x * w).sum(1, keepdim=True)
        elif x.shape[1] == 1:
            x = x.expand(-1, channels, -1, -1)
        else:
            raise DataError(f"cannot turn {x.shape[1]}-channel synthetic images into {channels} channels.")
    if tuple(x.shape[2:]) != tuple(size):
        x = torch.nn.functional.interpolate(x, size=tuple(size), mode="bilinear", antialias=True,
                                            align_corners=False)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)
