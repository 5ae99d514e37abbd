"""Read a model folder back, strictly: config validated, weights checked against their sha256,
the backend built through the installed plugins only (nothing from the folder is imported), keys
and shapes exact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from huggingface_hub import metadata_load

from gan_augment.core.contract import GenerativeAugmenter
from gan_augment.core.errors import BackendNotFoundError, GanAugmentError, ModelLoadError
from gan_augment.core.format import CARD_NAME, CONFIG_NAME, WEIGHTS_NAME, read_config, sha256_file
from gan_augment.core.registry import get_host
from gan_augment.core.serialization import read_safetensors, read_safetensors_metadata


def build_from_config(cfg: dict[str, Any], where: str) -> GenerativeAugmenter:
    """Build the model through the installed registry only: nothing from the folder is imported."""
    try:
        info = get_host().get(cfg["backend"])
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
    try:
        return info.cls(**cfg["config"])
    except Exception as exc:
        msg = " ".join(str(exc).split())
        raise ModelLoadError(f"{where}: config.json does not build a {cfg['backend']!r} model: {msg}") from exc


def load_folder(directory: str | Path) -> GenerativeAugmenter:
    """Load a local model folder strictly: config validated, weights verified, keys and shapes exact."""
    directory = Path(directory)
    cfg = read_config(directory / CONFIG_NAME)
    weights = directory / WEIGHTS_NAME
    if not weights.is_file():
        raise ModelLoadError(
            f"{directory} has {CONFIG_NAME} but no {WEIGHTS_NAME}; the folder is incomplete: copy or "
            "download the weights beside config.json, or save the model again with save_pretrained."
        )
    try:
        state = read_safetensors(weights)  # header or length damage shows up here
    except ModelLoadError as exc:
        raise ModelLoadError(" ".join(str(exc).split())) from exc
    expected = cfg.get("weights_sha256")
    if expected is not None:  # payload damage (flipped bytes inside a tensor) only shows up here
        got = sha256_file(weights)
        if got != expected:
            raise ModelLoadError(
                f"{weights} does not match the sha256 recorded in {CONFIG_NAME} ({got[:16]}... vs "
                f"{str(expected)[:16]}...): it is corrupted or was replaced; download or copy it again."
            )
    model = build_from_config(cfg, str(directory))
    saved_backend = read_safetensors_metadata(weights).get("backend")
    if saved_backend is not None and saved_backend != cfg["backend"]:
        raise ModelLoadError(
            f"{weights} holds {saved_backend!r} weights but {CONFIG_NAME} says {cfg['backend']!r}; "
            "the two files come from different models: keep the pair save_pretrained wrote together."
        )
    try:
        model.load_state_dict(state)
    except GanAugmentError:
        raise
    except Exception as exc:  # a config that builds no network: say so, never a torch traceback
        raise ModelLoadError(f"{directory}: config.json does not describe a loadable {cfg['backend']!r} "
                             f"model ({type(exc).__name__}: {exc}); re-save it with save_pretrained.") from exc
    model.training_summary = cfg.get("training") or {}
    model.metrics = cfg.get("metrics")
    return model




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


