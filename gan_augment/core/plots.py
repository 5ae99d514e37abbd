"""Sample grids and loss curves, written atomically (temp file + rename)."""

from __future__ import annotations

import io
from pathlib import Path

import torch

from gan_augment.core.serialization import atomic_write_bytes


def save_grid(images: torch.Tensor, path: str | Path, nrow: int = 8) -> Path:
    """Save float images in [0, 1] (N, C, H, W) as one PNG grid."""
    from PIL import Image
    from torchvision.utils import make_grid

    grid = make_grid(images.float().clamp(0, 1), nrow=max(1, nrow), padding=2, pad_value=1.0)
    arr = (grid.mul(255).round().byte().permute(1, 2, 0).numpy())
    buf = io.BytesIO()
    Image.fromarray(arr if arr.shape[2] == 3 else arr[:, :, 0]).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


#: the first logged losses left out when choosing the y-axis (e.g. WGAN-GP's huge starting penalty)
SETTLING_SHARE = 0.1
#: the percentiles of the later losses that bound the y-axis
AXIS_PERCENTILES = (1.0, 99.0)
#: clip only when all values span this many times the chosen range
OUTLIER_SPAN = 2.0


def loss_axis_limits(history: list[dict], keys: tuple[str, ...] = ("d_loss", "g_loss")) -> tuple[float, float] | None:
    """The y-axis range of a loss curve: the 1st..99th percentiles of the losses after the first
    tenth of the run, padded by a tenth, so that one early spike (a critic loss of 5,500 while the
    rest stays near 0) does not flatten the curve. None when no value lies far outside it (all
    values span at most OUTLIER_SPAN times that range)."""
    import numpy as np

    values = [[float(r[k]) for k in keys if k in r] for r in history]
    later = np.array([v for row in values[int(len(values) * SETTLING_SHARE):] for v in row], dtype=float)
    later = later[np.isfinite(later)]
    if later.size < 2:
        return None
    lo, hi = np.percentile(later, AXIS_PERCENTILES)
    pad = 0.1 * (hi - lo) or 0.1 * max(abs(hi), 1.0)
    lo, hi = float(lo - pad), float(hi + pad)
    every = np.array([v for row in values for v in row], dtype=float)
    every = every[np.isfinite(every)]
    if every.size and every.max() - every.min() <= OUTLIER_SPAN * (hi - lo):
        return None  # no value far outside: matplotlib's own axis shows everything
    return lo, hi


def save_loss_curve(history: list[dict], path: str | Path, title: str = "losses") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    steps = [r["step"] for r in history]
    for key in ("d_loss", "g_loss"):
        ax.plot(steps, [r[key] for r in history], label=key.replace("_", " "), linewidth=1)
    ax.set_xlabel("generator step")
    limits = loss_axis_limits(history)
    if limits is not None:  # clipped: the early values off the axis are in metrics.jsonl
        ax.set_ylim(*limits)
    ax.set_ylabel("loss" if limits is None else "loss (axis clipped to the later steps)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)
