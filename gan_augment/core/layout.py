"""The one grey/RGB/resize rule, for uint8 images read from files and float images a generator made."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from gan_augment.core.errors import ConfigError, DataError


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


def plan_layout(n: int, stored_channels: int, stored_sizes: Sequence[tuple[int, int]],
                channels: int | None, image_size: int | None,
                alternatives: Callable[[int], list[int]]) -> tuple[int, int, str]:
    """The model's (channels, image_size) for data of ``stored_channels`` and ``stored_sizes``
    (distinct (H, W)): what was asked, else the data's own. ``alternatives(size)`` names the
    nearest sizes a backend supports ([] when it supports ``size``). Returns them and the line
    that says so: ``data: 1,234 grey images 28x28 -> model 1 channel, 28 px``."""
    sizes = sorted({(int(h), int(w)) for h, w in stored_sizes})
    if not sizes:
        raise DataError("the dataset is empty; check --split and --classes.")
    shown = f"{sizes[0][0]}x{sizes[0][1]}" if len(sizes) == 1 else \
        f"of {len(sizes)} sizes ({sizes[0][0]}x{sizes[0][1]} to {sizes[-1][0]}x{sizes[-1][1]})"
    if image_size is None:
        side = max(sizes[-1])
        near = alternatives(side) or [side]
        fix = f"pass --image-size N (image_size=N in Python) to resize them to N x N, e.g. {' or '.join(map(str, near))}"
        if len(sizes) > 1:
            raise ConfigError(f"the images come in {len(sizes)} sizes ({', '.join(f'{h}x{w}' for h, w in sizes[:4])}"
                              f"{', ...' if len(sizes) > 4 else ''}); {fix}.")
        (h, w), = sizes
        if h != w:
            raise ConfigError(f"the images are {h}x{w} pixels, not square; {fix} (this stretches them).")
        near = alternatives(h)
        if near:
            raise ConfigError(f"the images are {h}x{w} pixels, a size these networks cannot make; pass "
                              f"--image-size {' or '.join(map(str, near))} (image_size= in Python) to resize them.")
        image_size = h
    ch = stored_channels if channels is None else channels
    kind = "grey" if stored_channels == 1 else "RGB"
    conv = "" if ch == stored_channels else (" (converted to grey)" if ch == 1 else " (grey copied to RGB)")
    resized = "" if sizes == [(image_size, image_size)] else " (resized)"
    line = (f"data: {n:,} {kind} images {shown} -> model {ch} channel{'s' if ch != 1 else ''}{conv}, "
            f"{image_size} px{resized}")
    return ch, image_size, line
