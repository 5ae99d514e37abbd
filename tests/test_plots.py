"""Loss curves stay readable after the first steps; sample grids and curves are written whole."""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

from gan_augment.core.plots import loss_axis_limits, save_grid, save_loss_curve


def wgan_gp_history(n: int = 200) -> list[dict]:
    """A critic loss that starts near 5,500 (the gradient penalty of an untrained critic) and
    settles within a few units of 0, as a cwgan-gp run logs it."""
    return [{"step": 10 * (i + 1), "d_loss": 5500.0 * math.exp(-i) - 2 + math.sin(i),
             "g_loss": 1.0 + 0.5 * math.cos(i)} for i in range(n)]


def test_an_early_spike_does_not_set_the_axis():
    lo, hi = loss_axis_limits(wgan_gp_history())
    assert -4 < lo < -2 and 1.5 < hi < 3  # the later values, padded by a tenth, not 5,500
    later = [v for r in wgan_gp_history()[20:] for v in (r["d_loss"], r["g_loss"])]
    assert lo <= min(later) and max(later) <= hi


def test_no_clipping_when_every_value_fits():
    flat = [{"step": i, "d_loss": 0.5 + 0.01 * i, "g_loss": 1.0} for i in range(50)]
    assert loss_axis_limits(flat) is None
    assert loss_axis_limits(flat[:1]) is None  # too short to say anything
    assert loss_axis_limits([{"step": 1, "d_loss": float("nan"), "g_loss": float("inf")}] * 5) is None


def test_constant_later_losses_get_a_visible_range():
    hist = [{"step": 1, "d_loss": 100.0, "g_loss": 1.0}] + [{"step": i, "d_loss": 1.0, "g_loss": 1.0}
                                                             for i in range(2, 40)]
    lo, hi = loss_axis_limits(hist)
    assert lo < 1.0 < hi and hi < 100


def test_saved_curve_uses_the_clipped_axis(tmp_path, monkeypatch):
    import matplotlib.axes

    seen = []
    real = matplotlib.axes.Axes.set_ylim
    monkeypatch.setattr(matplotlib.axes.Axes, "set_ylim", lambda self, *a, **k: seen.append(a) or real(self, *a, **k))
    path = save_loss_curve(wgan_gp_history(), tmp_path / "loss_curve.png")
    assert Image.open(path).format == "PNG"
    assert seen and seen[0][1] < 3
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]


def test_grid_is_one_png_of_all_images(tmp_path):
    path = save_grid(torch.rand(4, 3, 8, 8), tmp_path / "g.png", nrow=2)
    arr = np.asarray(Image.open(path))
    assert arr.shape == (2 * 8 + 3 * 2, 2 * 8 + 3 * 2, 3)
