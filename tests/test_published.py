"""The published models in hub/ load by short name with no network and carry their evidence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import gan_augment as ga

HUB = Path(__file__).resolve().parents[1] / "hub"
INDEX = json.loads((HUB / "index.json").read_text())


@pytest.mark.parametrize("name", sorted(INDEX))
def test_short_name_samples_offline(name, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    aug = ga.from_pretrained(name, local_files_only=True)
    x = aug.sample(16, generator=torch.Generator().manual_seed(0))
    c, h, w = aug.image_shape
    assert x.shape == (16, c, h, w) and x.dtype == torch.float32
    assert 0 <= x.min() and x.max() <= 1 and x.std() > 0.01  # not a blank or collapsed-to-grey image
    assert torch.equal(x, aug.sample(16, generator=torch.Generator().manual_seed(0)))


@pytest.mark.parametrize("name", sorted(INDEX))
def test_card_reports_metrics_beside_their_floor(name):
    folder = HUB / INDEX[name]["folder"]
    card = (folder / "README.md").read_text()
    for needle in ("| fid |", "| kid |", "| ms_ssim |", "| nn_distance_pixel_median |",
                   "| near_copies_feature_fraction |", "floor (real vs real)", "Acevedo"):
        assert needle in card, needle
    assert (folder / "model.safetensors").stat().st_size < 8 * 2**20  # small enough to commit
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["training"]["data_source"].startswith("pbc_") and "metrics" in cfg


def test_neutrophil_model_is_listed():
    assert "neutrophil-wgan-gp" in INDEX


def test_models_command_lists_published_names(capsys):
    from gan_augment.cli import main

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name, entry in INDEX.items():
        assert name in out and (entry["revision"] is not None or "not on the Hugging Face Hub yet" in out)
