"""What a gan-augment model folder holds (the Hugging Face Hub layout: config.json beside
model.safetensors, a README.md model card and a sample grid), how its two model files are written
(each to a temp name, then renamed into place) and how they are read back strictly."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata as md
import json
import os
import re
from pathlib import Path
from typing import Any

from gan_augment.core.config import read_json_config
from gan_augment.core.errors import GanAugmentError, ModelLoadError
from gan_augment.core.naming import reject_unknown_keys
from gan_augment.core.serialization import (
    atomic_save_safetensors,
    atomic_write_text,
    read_safetensors,
    read_safetensors_metadata,
)
from gan_augment.core.version import __version__

FORMAT_VERSION = 1
#: Every top-level key of config.json: model_config's, plus metrics and weights_sha256.
CONFIG_KEYS = frozenset({"format_version", "library_name", "library_version", "backend", "backend_distribution",
                         "backend_version", "conditional", "config", "image_shape", "class_names",
                         "normalization", "training", "metrics", "weights_sha256"})
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
GRID_NAME = "samples.png"
REQUIRED_FILES = (CONFIG_NAME, WEIGHTS_NAME)
OPTIONAL_FILES = (CARD_NAME, GRID_NAME)
#: Files a push uploads; anything else in a run folder (checkpoints, logs) stays local.
PUSH_FILES = REQUIRED_FILES + OPTIONAL_FILES + ("loss_curve.png",)
REPO_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] + ("..." if len(text) > 300 else "")


@functools.lru_cache(maxsize=1)
def _module_distributions() -> dict[str, list[str]]:
    return md.packages_distributions()


def backend_distribution(cls: type) -> tuple[str, str]:
    """(distribution, version) that installed a backend class, from package metadata: what
    config.json records so that a user missing the backend is told which package to install."""
    top = cls.__module__.split(".")[0]
    dists = _module_distributions().get(top)
    if not dists:
        return "unknown", "unknown"
    try:
        return dists[0], md.version(dists[0])
    except md.PackageNotFoundError:
        return dists[0], "unknown"


def model_config(model: Any, metrics: dict | None = None) -> dict[str, Any]:
    """The JSON that travels beside the weights: the backend, its config, the preprocessing
    contract (shape, class names, value ranges), how it was trained and what was measured."""
    dist, version = backend_distribution(type(model))
    c, h, w = model.image_shape
    cfg = {
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
    if metrics:
        cfg["metrics"] = metrics
    return cfg


def write_model_files(model: Any, directory: Path, metrics: dict | None = None) -> dict[str, Any]:
    """Write model.safetensors, then config.json (which carries the weights' sha256), each
    atomically: an interrupted save leaves the previous pair in place. Returns the config."""
    cfg = model_config(model, metrics)
    weights = directory / WEIGHTS_NAME
    atomic_save_safetensors(model.state_dict(), weights, metadata={"format": "pt", "backend": model.name})
    # safetensors cannot detect payload damage (only its header is structured): the sha256 can.
    cfg["weights_sha256"] = sha256_file(weights)
    atomic_write_text(directory / CONFIG_NAME, json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    return cfg


def read_config(path: Path) -> dict[str, Any]:
    cfg = read_json_config(path, "a gan-augment model folder", ("format_version", "backend", "config"),
                           FORMAT_VERSION, fix=refetch_hint(Path(path).parent) or "download or copy it again")
    if not isinstance(cfg["config"], dict):
        raise ModelLoadError(f"{path}: 'config' must be a JSON object.")
    reject_unknown_keys(cfg, CONFIG_KEYS, str(path), ModelLoadError, fix="Fix the key by hand, or re-save the "
                        "model with save_pretrained; if a newer gan-augment wrote it, `pip install -U gan-augment`.")
    return cfg


def refetch_hint(folder: Path) -> str | None:
    """For a folder inside the Hub cache (models--owner--name/snapshots/<commit>): how to replace
    the cached copy. None for any other folder, which is the user's to replace."""
    folder = Path(folder)
    repo = folder.parent.parent.name
    if folder.parent.name == "snapshots" and repo.startswith("models--"):
        repo_id = repo[len("models--"):].replace("--", "/", 1)
        return f"re-download it with from_pretrained('{repo_id}@{folder.name}', force_download=True)"
    return None


def load_model_files(model: Any, directory: Path, cfg: dict[str, Any]) -> Any:
    """Load the weights beside ``cfg`` into ``model`` strictly: readable safetensors, the sha256
    recorded in config.json, the backend named in the file's metadata, exact keys and shapes."""
    weights = directory / WEIGHTS_NAME
    if not weights.is_file():
        raise ModelLoadError(
            f"{directory} has {CONFIG_NAME} but no {WEIGHTS_NAME}; the folder is incomplete: copy or "
            "download the weights beside config.json, or save the model again with save_pretrained."
        )
    try:
        state = read_safetensors(weights)  # header or length damage shows up here
    except ModelLoadError as exc:
        hint = refetch_hint(directory)
        raise ModelLoadError(" ".join(str(exc).split()) + (f" ({hint})" if hint else "")) from exc
    expected = cfg.get("weights_sha256")
    if expected is not None:  # payload damage (flipped bytes inside a tensor) only shows up here
        got = sha256_file(weights)
        if got != expected:
            raise ModelLoadError(
                f"{weights} does not match the sha256 recorded in {CONFIG_NAME} ({got[:16]}... vs "
                f"{str(expected)[:16]}...): it is corrupted or was replaced; "
                f"{refetch_hint(directory) or 'download or copy it again'}."
            )
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
