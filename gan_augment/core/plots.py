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


def save_loss_curve(history: list[dict], path: str | Path, title: str = "losses") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    steps = [r["step"] for r in history]
    for key in ("d_loss", "g_loss"):
        ax.plot(steps, [r[key] for r in history], label=key.replace("_", " "), linewidth=1)
    ax.set_xlabel("generator step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)
