"""A model folder's backend, looked up among the installed plugins only (nothing from the folder
is imported), and the summary `gan-augment info` prints."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from huggingface_hub import metadata_load

from gan_augment.core.errors import BackendNotFoundError, ModelLoadError
from gan_augment.core.format import CARD_NAME, CONFIG_NAME, read_config
from gan_augment.core.registry import get_host


def backend_class(cfg: dict[str, Any], where: str) -> type:
    """The installed class of config.json's ``backend``, or an error naming the package to install."""
    try:
        return get_host().get(cfg["backend"]).cls
    except BackendNotFoundError as exc:
        dist = cfg.get("backend_distribution")
        if dist in ("gan-augment", "gan_augment"):
            fix = "it ships with gan-augment itself: upgrade with `pip install -U gan-augment`"
        elif dist and dist not in ("unknown", "runtime"):
            fix = f"install its package: `pip install {dist}`"
        else:
            fix = "install the package that provides it (config.json does not name one)"
        raise ModelLoadError(
            f"{where} needs the backend {cfg['backend']!r}, which is not installed; {fix}."
        ) from exc


def load_folder(directory: str | os.PathLike, device: Any = None):
    """Load a local model folder strictly, building the backend its config.json names."""
    directory = Path(directory)
    cfg = read_config(directory / CONFIG_NAME)
    return backend_class(cfg, str(directory)).from_pretrained(directory, device=device)


def card_summary(folder: str | Path) -> dict[str, Any]:
    """What `gan-augment info` prints, read from config.json and the card's front matter only
    (no weights are loaded and the backend need not be installed)."""
    folder = Path(folder)
    cfg = read_config(folder / CONFIG_NAME)
    meta = {}
    if (folder / CARD_NAME).is_file():
        try:
            meta = metadata_load(folder / CARD_NAME) or {}
        except Exception:  # a broken card must not hide the config
            meta = {}
    c, h, w = cfg.get("image_shape", [None, None, None])
    return {
        "folder": str(folder),
        "backend": cfg["backend"],
        "backend_distribution": cfg.get("backend_distribution"),
        "backend_version": cfg.get("backend_version"),
        "conditional": cfg.get("conditional"),
        "classes": cfg.get("class_names"),
        "image_size": f"{h}x{w}, {c} channel{'s' if c != 1 else ''}",
        "metrics": cfg.get("metrics") or {},
        "license": meta.get("license", "not stated (no model card)"),
        "datasets": meta.get("datasets") or [],
        "training_images": (cfg.get("training") or {}).get("images"),
        "format_version": cfg.get("format_version"),
        "config": json.loads(json.dumps(cfg.get("config", {}))),
    }
