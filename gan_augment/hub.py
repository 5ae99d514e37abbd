"""Save and load models in the Hugging Face Hub layout: config.json + model.safetensors + README.md.

Safetensors only (never pickle), strict loading, config validated against the installed backend.
No code from a model folder or repo is ever imported or executed.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from gan_augment import __version__
from gan_augment.errors import BackendNotFoundError, GanAugmentError, ModelLoadError
from gan_augment.interface import GenerativeAugmenter
from gan_augment.weights import (
    atomic_save_safetensors,
    atomic_write_text,
    read_safetensors,
    read_safetensors_metadata,
)

log = logging.getLogger("gan_augment.hub")

FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
GRID_NAME = "samples.png"


def model_config(model: GenerativeAugmenter) -> dict[str, Any]:
    from gan_augment.registry import get_host

    try:
        info = get_host().get(model.name)
        dist, version = info.distribution, info.version
    except BackendNotFoundError:
        dist, version = "unknown", "unknown"
    c, h, w = model.image_shape
    return {
        "format_version": FORMAT_VERSION,
        "library_name": "gan-augment",
        "library_version": __version__,
        "backend": model.name,
        "backend_distribution": dist,
        "backend_version": version,
        "conditional": model.conditional,
        "config": model.get_config(),
        "image_shape": [c, h, w],
        "class_names": model.class_names,
        "normalization": {"training_range": [-1.0, 1.0], "sample_range": [0.0, 1.0], "dtype": "float32"},
        "training": json.loads(json.dumps(model.training_summary or {}, default=str)),
    }


def save_pretrained(model: GenerativeAugmenter, directory: str | Path, card: bool = True,
                    **card_info: Any) -> Path:
    """Write the model folder. Each file is written to a temp name and renamed into place.

    ``card=False`` (what the trainer uses at every checkpoint) skips the sample grid and the model
    card, so it costs one safetensors write, one sha256 and one small JSON write.
    ``card_info`` goes to :func:`gan_augment.modelcard.render_card` (license, datasets, citation,
    data_description, metrics, extra); ``metrics`` are also stored in config.json.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    cfg = model_config(model)
    if card_info.get("metrics"):
        cfg["metrics"] = card_info["metrics"]
    weights = directory / WEIGHTS_NAME
    atomic_save_safetensors(model.state_dict(), weights, metadata={"format": "pt", "backend": model.name})
    # config.json carries the weights' sha256 so that a corrupted payload (which safetensors cannot
    # detect: only its header is structured) fails loudly on load instead of sampling garbage.
    from gan_augment.hub_client import sha256_file

    cfg["weights_sha256"] = sha256_file(weights)
    atomic_write_text(directory / CONFIG_NAME, json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    if card:
        from gan_augment.modelcard import render_card, write_sample_grid

        write_sample_grid(model, directory / GRID_NAME)
        atomic_write_text(directory / CARD_NAME, render_card(cfg, **card_info))
    return directory


def read_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ModelLoadError(f"{path.parent} has no {CONFIG_NAME}; it is not a gan-augment model folder.")
    try:
        cfg = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{path} is not valid JSON ({exc}); download or copy it again.") from exc
    if not isinstance(cfg, dict):
        raise ModelLoadError(f"{path} must hold a JSON object, got {type(cfg).__name__}.")
    for key in ("format_version", "backend", "config"):
        if key not in cfg:
            raise ModelLoadError(f"{path} lacks the key {key!r}; it was not written by gan-augment's save_pretrained.")
    fv = cfg["format_version"]
    if not isinstance(fv, int) or isinstance(fv, bool) or fv < 1:
        raise ModelLoadError(f"{path} has format_version {fv!r}, which is not a positive integer; the file is damaged.")
    if fv > FORMAT_VERSION:
        raise ModelLoadError(
            f"{path} has format version {fv}, newer than this gan-augment ({__version__}) reads "
            f"({FORMAT_VERSION}); upgrade with `pip install -U gan-augment`."
        )
    if not isinstance(cfg["config"], dict):
        raise ModelLoadError(f"{path}: 'config' must be a JSON object.")
    return cfg


def build_from_config(cfg: dict[str, Any], where: str) -> GenerativeAugmenter:
    """Build the model through the installed registry only: nothing from the folder is imported."""
    from gan_augment.registry import get_host

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
        from gan_augment.hub_client import sha256_file

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


def from_pretrained(name_or_path: str | Path, revision: str | None = None, cache_dir: str | None = None,
                    local_files_only: bool = False, token: str | None = None,
                    device: str | torch.device | None = None) -> GenerativeAugmenter:
    """Load a model from a local folder, a short name in ``hub/``'s index, or a Hub repo id
    (``owner/name`` or ``owner/name@revision``).

    Hub files go through huggingface_hub's cache (``cache_dir``, ``HF_HOME``, ``HF_HUB_OFFLINE``,
    ``local_files_only``, ``token`` as usual). Loading is strict and safe: JSON config, safetensors
    weights checked by sha256, the backend taken from the installed plugins; nothing is unpickled
    and no downloaded code runs."""
    from gan_augment.hub_client import resolve

    folder = resolve(str(name_or_path), revision=revision, cache_dir=cache_dir,
                     local_files_only=local_files_only, token=token)
    model = load_folder(folder)
    if device is not None:
        model.to(device)
    return model


def push_to_hub(model: GenerativeAugmenter, repo_id: str, *, private: bool | None = None,
                token: str | None = None, commit_message: str | None = None,
                revision: str | None = None, **card_info: Any):
    """Save the model (with its card) to a temp folder and upload it with huggingface_hub's
    ``create_repo`` + ``upload_folder``. Returns the ``CommitInfo``; its ``oid`` is the commit to pin
    in ``hub/index.json``."""
    from gan_augment.hub_client import push_model

    return push_model(model, repo_id, private=private, token=token, commit_message=commit_message,
                      revision=revision, **card_info)


def push_folder(directory: str | Path, repo_id: str, **kwargs: Any):
    """Upload a saved model folder (``gan-augment push DIR REPO_ID``); see hub_client.push_folder."""
    from gan_augment.hub_client import push_folder as _push

    return _push(directory, repo_id, **kwargs)
