"""SNGAN's residual networks (Miyato et al. 2018; Miyato & Koyama 2018), sized for 16-128 px.

Generator: a linear map of z to a s0 x s0 grid (s0 in 4..7), then one residual block per 2x step.
Each block upsamples by nearest neighbour and convolves 3x3 (resize-then-convolve: transposed
convolutions leave checkerboard artefacts), with class-conditional batch norm, so the class
scales and shifts every block's features. ``shared_blocks`` makes the first (coarsest) blocks'
norm ignore the class (UTLO-style knowledge sharing: the coarse cell shape is learned from every
class, the class acts only at finer scales).

Discriminator: residual blocks with average-pool downsampling, every weight spectrally normalised
(torch's parametrisation), ReLU and sum pooling, then a linear score plus the projection term
<embed(y), h(x)>. With one class both nets are the unconditional SNGAN.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

import gan_augment as ga


def _sn(module: nn.Module) -> nn.Module:
    return spectral_norm(module)


def _class_labels(labels: torch.Tensor | None, n: int, num_classes: int, device) -> torch.Tensor:
    if labels is not None:
        return labels
    if num_classes == 1:  # the unconditional form: every sample is class 0
        return torch.zeros(n, dtype=torch.long, device=device)
    raise ValueError("this network is conditional: pass labels")


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm without its own affine; class c scales by gamma[c] and shifts by beta[c].
    ``shared=True``: one gamma/beta for every class (an ordinary batch norm)."""

    def __init__(self, channels: int, num_classes: int, shared: bool = False):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        rows = 1 if shared else num_classes
        self.shared = shared
        self.gamma = nn.Embedding(rows, channels)
        self.beta = nn.Embedding(rows, channels)
        nn.init.ones_(self.gamma.weight)
        nn.init.zeros_(self.beta.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        rows = torch.zeros_like(labels) if self.shared else labels
        g = self.gamma(rows).to(x.dtype)[:, :, None, None]
        b = self.beta(rows).to(x.dtype)[:, :, None, None]
        return self.bn(x) * g + b


class GeneratorBlock(nn.Module):
    """CBN, ReLU, 2x nearest upsampling, 3x3 conv, CBN, ReLU, 3x3 conv; shortcut: upsample, 1x1 conv."""

    def __init__(self, c_in: int, c_out: int, num_classes: int, shared: bool = False):
        super().__init__()
        self.norm1 = ConditionalBatchNorm2d(c_in, num_classes, shared)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, 1, 1)
        self.norm2 = ConditionalBatchNorm2d(c_out, num_classes, shared)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.skip = nn.Conv2d(c_in, c_out, 1, 1, 0)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.norm1(x, labels)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.norm2(self.conv1(h), labels)))
        return h + self.skip(F.interpolate(x, scale_factor=2, mode="nearest"))


class ResNetGenerator(nn.Module):
    """(z, labels) -> images in [-1, 1]; channels halve each block from width * 2^(k-1) to width."""

    def __init__(self, latent_dim: int, channels: int, image_size: int, width: int, num_classes: int,
                 shared_blocks: int = 0):
        super().__init__()
        s0, k = ga.nets.upsampling_plan(image_size)
        if not 0 <= shared_blocks <= k:
            raise ga.ConfigError(f"shared_blocks must lie in 0..{k} at {image_size} px (the generator has "
                                 f"{k} blocks), got {shared_blocks}.")
        self.num_classes, self.s0 = num_classes, s0
        c = width * 2 ** (k - 1)
        self.c0 = c
        self.linear = nn.Linear(latent_dim, c * s0 * s0)
        blocks = []
        for i in range(k):
            c_out = max(width, c // 2) if i < k - 1 else width
            blocks.append(GeneratorBlock(c, c_out, num_classes, shared=i < shared_blocks))
            c = c_out
        self.blocks = nn.ModuleList(blocks)
        self.out_norm = nn.BatchNorm2d(c)
        self.out_conv = nn.Conv2d(c, channels, 3, 1, 1)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        labels = _class_labels(labels, z.shape[0], self.num_classes, z.device)
        h = self.linear(z).view(z.shape[0], self.c0, self.s0, self.s0)
        for block in self.blocks:
            h = block(h, labels)
        return torch.tanh(self.out_conv(F.relu(self.out_norm(h))))


class DiscriminatorBlock(nn.Module):
    """(ReLU,) 3x3 conv, ReLU, 3x3 conv, (2x average pool); shortcut 1x1 conv (and pool).
    The first block (``first``) sees the image itself, so it has no ReLU before its first conv
    and pools before its shortcut conv, as in Miyato et al.'s optimised first block."""

    def __init__(self, c_in: int, c_out: int, down: bool, first: bool = False):
        super().__init__()
        self.down, self.first = down, first
        self.conv1 = _sn(nn.Conv2d(c_in, c_out, 3, 1, 1))
        self.conv2 = _sn(nn.Conv2d(c_out, c_out, 3, 1, 1))
        self.skip = _sn(nn.Conv2d(c_in, c_out, 1, 1, 0)) if (c_in != c_out or down) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))
        if self.down:
            h = F.avg_pool2d(h, 2)
        s = x
        if self.first:
            s = self.skip(F.avg_pool2d(s, 2))
        else:
            s = self.skip(s) if self.skip is not None else s
            s = F.avg_pool2d(s, 2) if self.down else s
        return h + s


class ResNetDiscriminator(nn.Module):
    """Image (and labels) -> (N, 1) scores: w.h + <embed(y), h>, with h the ReLU'd, sum-pooled
    features of the last block. Channels double each downsampling block from ``width``."""

    def __init__(self, channels: int, image_size: int, width: int, num_classes: int):
        super().__init__()
        _, k = ga.nets.upsampling_plan(image_size)
        self.num_classes = num_classes
        blocks, c = [DiscriminatorBlock(channels, width, down=True, first=True)], width
        for _ in range(k - 1):
            blocks.append(DiscriminatorBlock(c, c * 2, down=True))
            c *= 2
        blocks.append(DiscriminatorBlock(c, c, down=False))  # one more block at the coarsest size
        self.blocks = nn.ModuleList(blocks)
        self.feature_dim = c
        self.head = _sn(nn.Linear(c, 1))
        self.embed = _sn(nn.Embedding(num_classes, c))
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.parametrizations.weight.original)
                nn.init.zeros_(m.bias)
        nn.init.xavier_uniform_(self.embed.parametrizations.weight.original)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for block in self.blocks:
            h = block(h)
        return F.relu(h).sum(dim=(2, 3))

    def projection(self, h: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """<embed(y), h> per sample, (N, 1)."""
        return (self.embed(labels).to(h.dtype) * h).sum(dim=1, keepdim=True)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(x)
        labels = _class_labels(labels, x.shape[0], self.num_classes, x.device)
        return self.head(h) + self.projection(h, labels)
