"""What a gan-augment model folder holds (the Hugging Face Hub layout: config.json beside
model.safetensors, a README.md model card and a sample grid): the file names, the config.json
a model writes and the strict reading of one. core/folder.py does the finding, reading, writing
and pushing with these."""

from __future__ import annotations

import functools
import importlib.metadata as md
import json
import re
from pathlib import Path
from typing import Any

from gan_augment.core.errors import ModelLoadError
from gan_augment.core.json_file import read_json_file
from gan_augment.core.naming import reject_unknown_keys
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
SHA1_RE = re.compile(r"^[0-9a-f]{40}$")  # a Hub commit
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")  # a file digest


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


def read_config(path: Path) -> dict[str, Any]:
    cfg = read_json_file(path, "a gan-augment model folder", ("format_version", "backend", "config"),
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
