"""The shortcut probe: can a small classifier tell a class's synthetic images from its real ones?

Why it matters: when every synthetic image in a training set belongs to one class (strategy
"minority"), "looks synthetic" is itself a label cue. A classifier can learn the generator's
texture instead of the cell and then miss real images of that class. An ROC AUC near 0.5 means
the probe cannot tell the two apart; near 1.0 means a classifier trained on the mix has a
shortcut to learn.

How it is built, and why:

- **A small CNN on pixels, trained from scratch**, not logistic regression on frozen features.
  The risk is a classifier trained from scratch on pixels picking up generator texture; the
  domain extractor was trained to separate cell classes and may be blind to exactly that texture
  (it is invariant to what does not help name the class), so frozen features would understate
  the shortcut. Three stride-2 convolutions (16, 32, 64 channels), global average pooling, one
  logit: about 25k parameters, a few seconds per class on a CPU.
- **Held-out halves.** Real and synthetic images are each split in two (seeded); the probe trains
  on one half of both and is scored on the other, then the halves swap, and the two AUCs are
  averaged (every image is scored once, by a probe that never saw it). AUC on the images it was
  trained on would only measure memory.
- **Equal numbers** of real and synthetic images (the smaller count, at most ``max_per_side``),
  so the probe cannot win by predicting the larger side.
- **Flips** as the only augmentation, applied alike to both sides, so it adds no cue.
- **Seeded**: the same images and seed give the same AUC.
- AUC comes from torchmetrics (``binary_auroc``). ``null_sd`` is the standard deviation of the AUC
  of two indistinguishable sets of these sizes, sqrt((n1 + n2 + 1) / (12 n1 n2)) (Mann-Whitney),
  so an AUC within about 2 ``null_sd`` of 0.5 is indistinguishable at this sample size.

A generator that copies its training images also scores about 0.5 (or below, when the probe
memorises a copy and meets the original): read the probe with the memorisation check.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from gan_augment.core.errors import DataError

#: images per side at most (the rest are not used): keeps the probe a few seconds per class
MAX_PER_SIDE = 256
STEPS, BATCH, LR = 150, 32, 2e-3


def probe_net(channels: int) -> nn.Module:
    """The probe: 3 stride-2 convolutions, global average pooling, one logit (synthetic)."""
    return nn.Sequential(
        nn.Conv2d(channels, 16, 3, 2, 1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, 2, 1), nn.ReLU(),
        nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 1))


def _as_unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] or float [0, 1] -> float [-1, 1]."""
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    return x.clamp(0, 1).mul(2).sub(1)


def _fit_and_score(train_x, train_y, test_x, test_y, seed: int, steps: int, device) -> float:
    from torchmetrics.functional.classification import binary_auroc

    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = probe_net(int(train_x.shape[1])).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    n = len(train_x)
    for _ in range(steps):
        idx = torch.randint(0, n, (min(BATCH, n),), generator=g)
        x, y = train_x[idx], train_y[idx]
        flip = torch.rand(len(x), 2, generator=g)
        x = torch.where(flip[:, 0, None, None, None] < 0.5, x.flip(-1), x)
        x = torch.where(flip[:, 1, None, None, None] < 0.5, x.flip(-2), x)
        loss = nn.functional.binary_cross_entropy_with_logits(net(x.to(device)).squeeze(1), y.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        scores = torch.cat([net(test_x[i:i + 256].to(device)).squeeze(1).cpu() for i in range(0, len(test_x), 256)])
    return float(binary_auroc(scores, test_y.long()))


def separability(real: torch.Tensor, synthetic: torch.Tensor, seed: int = 0, steps: int = STEPS,
                 max_per_side: int = MAX_PER_SIDE, device: str | torch.device | None = None) -> dict[str, Any]:
    """ROC AUC of a small CNN telling ``synthetic`` from ``real`` images on held-out halves.

    Both are (N, C, H, W), uint8 or float in [0, 1], of one class. Returns ``{"auc", "folds"
    (the two halves' AUCs), "n_real", "n_synthetic" (images used per side), "null_sd"}``.
    0.5 = indistinguishable, 1.0 = always told apart.
    """
    if real.ndim != 4 or synthetic.ndim != 4 or real.shape[1:] != synthetic.shape[1:]:
        raise DataError(f"separability needs real and synthetic images of one shape (N, C, H, W), got "
                        f"{tuple(real.shape)} and {tuple(synthetic.shape)}.")
    m = min(len(real), len(synthetic), int(max_per_side))
    if m < 4:
        raise DataError(f"separability needs at least 4 real and 4 synthetic images (2 per half), got "
                        f"{len(real)} real and {len(synthetic)} synthetic.")
    g = torch.Generator().manual_seed(seed)
    r = _as_unit(real[torch.randperm(len(real), generator=g)[:m]])
    s = _as_unit(synthetic[torch.randperm(len(synthetic), generator=g)[:m]])
    h = m // 2
    halves = [(r[:h], s[:h]), (r[h:], s[h:])]
    dev = torch.device(device) if device is not None else torch.device("cpu")
    folds = []
    for k, (fit_half, held_out) in enumerate(((halves[0], halves[1]), (halves[1], halves[0]))):
        folds.append(_fit_and_score(*_labelled(fit_half), *_labelled(held_out), seed + k, steps, dev))
    return {"auc": sum(folds) / 2, "folds": folds, "n_real": m, "n_synthetic": m,
            "null_sd": math.sqrt((2 * h + 1) / (12 * h * h))}


def _labelled(half: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(real, synthetic) -> (images, labels: 0 real, 1 synthetic)."""
    real, synthetic = half
    return torch.cat([real, synthetic]), torch.cat([torch.zeros(len(real)), torch.ones(len(synthetic))])
