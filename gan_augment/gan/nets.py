"""Convolutional building blocks sized for 28/32/64/128 px, shared by the built-in backends
and offered to third-party ones (Radford et al.'s DCGAN layout, with options for conditioning)."""

from __future__ import annotations

import torch
from torch import nn

from gan_augment.core.errors import ConfigError


def upsampling_plan(image_size: int) -> tuple[int, int]:
    """(start size, number of 2x steps) with start in 4..7: 28 -> (7, 2), 64 -> (4, 4)."""
    for k in range(1, MAX_DOUBLINGS + 1):
        s0, rem = divmod(image_size, 2**k)
        if rem == 0 and 4 <= s0 <= 7:
            return s0, k
    near = " or ".join(str(s) for s in nearest_supported_sizes(image_size))
    raise ConfigError(
        f"image_size {image_size} is not supported by the convolutional networks; the nearest "
        f"supported sizes are {near} (sizes s * 2^k with s in 4..7: 28, 32, 64, 128, ...)."
    )


MAX_DOUBLINGS = 7
SUPPORTED_SIZES = sorted({s * 2**k for s in range(4, 8) for k in range(1, MAX_DOUBLINGS + 1)})


def nearest_supported_sizes(image_size: int) -> list[int]:
    """[] when the networks make ``image_size`` pixels; else the supported sizes just below and
    just above it (one of them at the ends of the range), for error messages."""
    if image_size in SUPPORTED_SIZES:
        return []
    below = [s for s in SUPPORTED_SIZES if s < image_size]
    above = [s for s in SUPPORTED_SIZES if s > image_size]
    return ([below[-1]] if below else []) + ([above[0]] if above else [])


def _check_sizes(minimum: int, **values: int) -> None:
    for key, v in values.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < minimum:
            raise ConfigError(f"{key} must be an integer >= {minimum}, got {v!r}.")


def norm2d(kind: str, c: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(c)
    if kind == "layer":  # layer norm over (C, H, W): the WGAN-GP paper's critic choice
        return nn.GroupNorm(1, c)
    if kind == "instance":
        return nn.InstanceNorm2d(c, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ConfigError(f"unknown norm {kind!r}; use batch, layer, instance or none.")


class ConvGenerator(nn.Module):
    """z (and optionally a class label, embedded and concatenated) -> image in [-1, 1]."""

    def __init__(self, latent_dim: int, channels: int, image_size: int, width: int = 64,
                 num_classes: int = 0, embed_dim: int = 0, norm: str = "batch"):
        super().__init__()
        _check_sizes(1, latent_dim=latent_dim, width=width)
        _check_sizes(0, num_classes=num_classes, embed_dim=embed_dim)
        s0, k = upsampling_plan(image_size)
        c = width * 2 ** (k - 1)
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes and embed_dim else None
        in_dim = latent_dim + (embed_dim if self.embed is not None else 0)
        layers: list[nn.Module] = [nn.ConvTranspose2d(in_dim, c, s0, 1, 0, bias=False), norm2d(norm, c), nn.ReLU(True)]
        for _ in range(k - 1):
            layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), norm2d(norm, c // 2), nn.ReLU(True)]
            c //= 2
        layers += [nn.ConvTranspose2d(c, channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            if labels is None:
                raise ValueError("this generator is conditional: pass labels")
            z = torch.cat([z, self.embed(labels)], dim=1)
        return self.net(z[:, :, None, None])


class ConvDiscriminator(nn.Module):
    """Image -> (N, out_dim) scores. With ``num_classes`` it is a projection discriminator
    (Miyato & Koyama 2018): score = w.h + <embed(y), h> on the flattened features h."""

    def __init__(self, channels: int, image_size: int, width: int = 64, norm: str = "batch",
                 out_dim: int = 1, num_classes: int = 0):
        super().__init__()
        _check_sizes(1, width=width, out_dim=out_dim)
        _check_sizes(0, num_classes=num_classes)
        s0, k = upsampling_plan(image_size)
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        c = width
        for _ in range(k - 1):
            layers += [nn.Conv2d(c, c * 2, 4, 2, 1, bias=norm == "none"), norm2d(norm, c * 2), nn.LeakyReLU(0.2, True)]
            c *= 2
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.feature_dim = c * s0 * s0
        self.head = nn.Linear(self.feature_dim, out_dim)
        self.embed = nn.Embedding(num_classes, self.feature_dim) if num_classes else None
        self.apply(dcgan_init)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(x)
        out = self.head(h)
        if self.embed is not None:
            if labels is None:
                raise ValueError("this discriminator is conditional: pass labels")
            out = out + (self.embed(labels) * h).sum(dim=1, keepdim=True)
        return out


def dcgan_init(m: nn.Module) -> None:
    """Radford et al.: weights from N(0, 0.02); norm scales from N(1, 0.02)."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d)) and m.weight is not None:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)
