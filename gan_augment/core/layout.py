"""The one grey/RGB/resize rule, for uint8 images read from files, float images a generator made,
and images a feature extractor takes: grey <-> RGB by ITU-R 601 luma (or by repeating the grey
channel), bilinear resizing with antialiasing. Everything that converts an image layout calls
:func:`convert`."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from gan_augment.core.errors import ConfigError, DataError

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


def signed_to_unit(x: torch.Tensor) -> torch.Tensor:
    """A generator's [-1, 1] output -> [0, 1], clamped: the one rule of what sample() returns."""
    return (x.clamp(-1, 1) + 1) / 2


def uint8_to_signed(x: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> float32 in [-1, 1]: the one rule of what networks are trained on."""
    return x.float().div(127.5).sub(1.0)


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
