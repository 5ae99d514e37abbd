"""Sample-quality metrics of a generator against held-out real images, each beside its floor.

The reference set is always the real TEST split. Every metric is computed twice with the same
sizes and class counts: synthetic vs real test (the value) and a real TRAIN subset vs real test
(the floor: what a generator that reproduced the real distribution would score). FID, KID and
Inception Score come from torchmetrics; features come from a pluggable extractor whose name is
written into the report."""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import nn

MS_SSIM_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


class _Precomputed(nn.Module):
    """Hands already-extracted features to torchmetrics, so each image set is embedded once
    and reused across overall, per-class and floor figures."""

    def __init__(self, dim: int):
        super().__init__()
        self.num_features = int(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def float01(x: torch.Tensor) -> torch.Tensor:
    return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()


# ---- distribution distances in feature space (torchmetrics) --------------------------------
def fid_from_features(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (torchmetrics FID)."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    if len(real) < 2 or len(fake) < 2:
        return float("nan")
    m = FrechetInceptionDistance(feature=_Precomputed(real.shape[1]), normalize=True)
    m.update(real.double(), real=True)
    m.update(fake.double(), real=False)
    return float(m.compute())


def kid_from_features(real: torch.Tensor, fake: torch.Tensor, subset_size: int = 1000,
                      subsets: int = 100, seed: int = 0) -> dict[str, float]:
    """Kernel distance (polynomial-kernel MMD², unbiased; torchmetrics KID) with its spread over subsets."""
    from torchmetrics.image.kid import KernelInceptionDistance

    k = min(subset_size, len(real), len(fake))
    if k < 2:
        return {"mean": float("nan"), "std": float("nan"), "subset_size": k}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        m = KernelInceptionDistance(feature=_Precomputed(real.shape[1]), subsets=subsets,
                                    subset_size=k, normalize=True)
    m.update(real.double(), real=True)
    m.update(fake.double(), real=False)
    with torch.random.fork_rng(devices=[]):  # KID draws its subsets with the global RNG
        torch.manual_seed(seed)
        mean, std = m.compute()
    return {"mean": float(mean), "std": float(std), "subset_size": k}


def inception_score_from_logits(logits: torch.Tensor, splits: int = 10, seed: int = 0) -> dict[str, float]:
    """exp(E KL(p(y|x) || p(y))) over ``splits`` chunks (torchmetrics InceptionScore)."""
    from torchmetrics.image.inception import InceptionScore

    splits = max(1, min(splits, len(logits) // 20))
    if len(logits) < 2:
        return {"mean": float("nan"), "std": float("nan"), "splits": splits}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        m = InceptionScore(feature=_Precomputed(logits.shape[1]), splits=splits)
    m.update(logits.double())
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # std of a single split
        torch.manual_seed(seed)
        mean, std = m.compute()
    std = float(std) if splits > 1 else 0.0
    return {"mean": float(mean), "std": std, "splits": splits}


# ---- k-NN manifold metrics -------------------------------------------------------------------
def kth_nn_radius(x: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each point to its k-th nearest OTHER point of the same set."""
    d = torch.cdist(x.double(), x.double())
    d.fill_diagonal_(float("inf"))
    k = min(k, len(x) - 1)
    return d.kthvalue(k, dim=1).values


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> dict[str, float]:
    """Improved precision/recall (Kynkäänniemi et al. 2019): share of fake samples inside the
    real k-NN manifold, and share of real samples inside the fake one."""
    if len(real) < 2 or len(fake) < 2:
        return {"precision": float("nan"), "recall": float("nan")}
    r_real, r_fake = kth_nn_radius(real, k), kth_nn_radius(fake, k)
    d = torch.cdist(fake.double(), real.double())  # (F, R)
    precision = (d <= r_real.unsqueeze(0)).any(dim=1).double().mean()
    recall = (d <= r_fake.unsqueeze(1)).any(dim=0).double().mean()
    return {"precision": float(precision), "recall": float(recall)}


def density_coverage(real: torch.Tensor, fake: torch.Tensor, k: int = 5) -> dict[str, float]:
    """Density and coverage (Naeem et al. 2020): how many real k-NN balls hold each fake sample
    (density, ~1 for a matching distribution), and the share of real balls holding any fake one."""
    if len(real) < 2 or len(fake) < 1:
        return {"density": float("nan"), "coverage": float("nan")}
    k = min(k, len(real) - 1)
    r_real = kth_nn_radius(real, k)
    inside = torch.cdist(fake.double(), real.double()) <= r_real.unsqueeze(0)  # (F, R)
    density = inside.double().sum() / (k * len(fake))
    coverage = inside.any(dim=0).double().mean()
    return {"density": float(density), "coverage": float(coverage)}


# ---- diversity (mode-collapse signal) --------------------------------------------------------
def ms_ssim_settings(size: int) -> dict[str, Any]:
    """Scales and window that fit a small image: the standard 11-px, 5-scale MS-SSIM needs
    > 160 px. Keep the coarsest scale >= 8 px, then the largest odd window torchmetrics accepts."""
    scales = 1
    for s in range(5, 0, -1):
        if size / 2 ** (s - 1) >= 8 and size >= 2 ** s:
            scales = s
            break
    div = max(1, scales - 1) ** 2
    coarsest = size // 2 ** (scales - 1)
    kernel = 3
    for k in (11, 9, 7, 5, 3):
        if size // div > k - 1 and k <= coarsest:
            kernel = k
            break
    betas = MS_SSIM_BETAS[:scales]
    total = sum(betas)
    return {"scales": scales, "kernel_size": kernel, "sigma": round(1.5 * kernel / 11, 4),
            "betas": tuple(b / total for b in betas)}


def ms_ssim_pairs(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """MS-SSIM of each pair (a[i], b[i]) of float [0, 1] images (torchmetrics), settings scaled to the size."""
    from torchmetrics.image import MultiScaleStructuralSimilarityIndexMeasure

    st = ms_ssim_settings(int(min(a.shape[-2:])))
    m = MultiScaleStructuralSimilarityIndexMeasure(
        kernel_size=st["kernel_size"], sigma=st["sigma"], betas=st["betas"], data_range=1.0,
        reduction="none", normalize="relu")
    out = []
    for s in range(0, len(a), 256):
        out.append(m(a[s:s + 256].float(), b[s:s + 256].float()).reshape(-1))
        m.reset()
    return torch.cat(out) if out else torch.empty(0)


def ms_ssim_diversity(images: torch.Tensor, n_pairs: int = 200, seed: int = 0) -> dict[str, Any]:
    """Mean MS-SSIM over random distinct pairs of one class: higher means less diverse (1 = copies)."""
    n = len(images)
    if n < 2:
        return {"mean": float("nan"), "pairs": 0}
    g = torch.Generator().manual_seed(seed)
    n_pairs = min(n_pairs, n * (n - 1) // 2)
    i = torch.randint(0, n, (n_pairs,), generator=g)
    j = (i + torch.randint(1, n, (n_pairs,), generator=g)) % n  # j != i
    vals = ms_ssim_pairs(float01(images[i]), float01(images[j]))
    return {"mean": float(vals.mean()), "pairs": int(n_pairs)}


# ---- memorisation ----------------------------------------------------------------------------
def nearest_distances(query: torch.Tensor, reference: torch.Tensor, chunk: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """Distance from each query row to its nearest reference row, and that row's index."""
    q, r = query.reshape(len(query), -1).float(), reference.reshape(len(reference), -1).float()
    dist, idx = [], []
    for s in range(0, len(q), chunk):
        d = torch.cdist(q[s:s + chunk], r)
        v, i = d.min(dim=1)
        dist.append(v)
        idx.append(i)
    return torch.cat(dist), torch.cat(idx)


def memorisation_check(fake_feat: torch.Tensor, fake_pix: torch.Tensor, train_feat: torch.Tensor,
                       train_pix: torch.Tensor, test_feat: torch.Tensor, test_pix: torch.Tensor,
                       percentile: float = 1.0, top: int = 5) -> dict[str, Any]:
    """Flag synthetic images closer to a training image than ``percentile`` % of real TEST images
    are: a fresh real image is that close only rarely, a copy always is. Pixel distances are RMS
    per pixel on [0, 1] images; feature distances are Euclidean in the extractor's space."""
    out: dict[str, Any] = {"calibration": f"threshold = percentile {percentile:g} of real-test-to-train nearest distances"}
    flags = {}
    for space, fq, tq, rq, scale in (
        ("pixel", fake_pix, test_pix, train_pix, math.sqrt(fake_pix[0].numel()) if len(fake_pix) else 1.0),
        ("feature", fake_feat, test_feat, train_feat, 1.0),
    ):
        d_fake, i_fake = nearest_distances(fq, rq)
        d_test, _ = nearest_distances(tq, rq)
        d_fake, d_test = d_fake / scale, d_test / scale
        thr = float(torch.quantile(d_test.double(), percentile / 100.0))
        flagged = d_fake < thr
        flags[space] = flagged
        order = torch.argsort(d_fake)[:top]
        out[space] = {
            "threshold": thr,
            "flagged": int(flagged.sum()),
            "flagged_fraction": float(flagged.double().mean()),
            "median_nn_distance": float(d_fake.median()),
            "floor": {"median_nn_distance": float(d_test.median()),
                      "flagged_fraction": float((d_test < thr).double().mean())},
            "nn_ratio": float(d_fake.median() / d_test.median()) if float(d_test.median()) > 0 else float("nan"),
            "closest": [{"synthetic": int(a), "train": int(i_fake[a]), "distance": float(d_fake[a])} for a in order],
        }
    both = flags["pixel"] & flags["feature"]
    out["near_copies"] = int(both.sum())
    out["near_copy_indices"] = torch.nonzero(both).flatten()[:50].tolist()
    return out
