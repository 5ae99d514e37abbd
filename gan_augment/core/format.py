"""What a gan-augment model folder holds (the Hugging Face Hub layout: config.json beside
model.safetensors, a README.md model card and a sample grid) and how one is written: each file to a
temp name, then renamed into place. Reading folders back lives in gan_augment.hub.folder."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata as md
import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from gan_augment.core.errors import ConfigError, GanAugmentError, ModelLoadError
from gan_augment.core.modelcard import render_card, write_sample_grid
from gan_augment.core.naming import reject_unknown_keys
from gan_augment.core.serialization import atomic_save_safetensors, atomic_write_text
from gan_augment.core.version import __version__

FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
GRID_NAME = "samples.png"
REQUIRED_FILES = (CONFIG_NAME, WEIGHTS_NAME)
OPTIONAL_FILES = (CARD_NAME, GRID_NAME)
#: Files a push uploads; anything else in a run folder (checkpoints, logs) stays local.
PUSH_FILES = REQUIRED_FILES + OPTIONAL_FILES + ("loss_curve.png",)
#: Every top-level key of config.json: model_config's, plus metrics and weights_sha256.
CONFIG_KEYS = frozenset({"format_version", "library_name", "library_version", "backend", "backend_distribution",
                         "backend_version", "conditional", "config", "image_shape", "class_names",
                         "normalization", "training", "metrics", "weights_sha256"})
REPO_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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


def model_config(model: Any) -> dict[str, Any]:
    """The JSON that travels beside the weights: the backend, its config, the preprocessing
    contract (shape, class names, value ranges) and how it was trained."""
    dist, version = backend_distribution(type(model))
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


def write_model_folder(model: Any, directory: str | Path, card: bool = True,
                    **card_info: Any) -> Path:
    """Write the model folder. Each file is written to a temp name and renamed into place.

    ``card=False`` (what the trainer uses at every checkpoint) skips the sample grid and the model
    card, so it costs one safetensors write, one sha256 and one small JSON write.
    ``card_info`` goes to :func:`gan_augment.core.modelcard.render_card` (license, datasets, citation,
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
    cfg["weights_sha256"] = sha256_file(weights)
    atomic_write_text(directory / CONFIG_NAME, json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    if card:
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
    reject_unknown_keys(cfg, CONFIG_KEYS, str(path), ModelLoadError, fix="Fix the key by hand, or re-save the "
                        "model with save_pretrained; if a newer gan-augment wrote it, `pip install -U gan-augment`.")
    if not isinstance(cfg["config"], dict):
        raise ModelLoadError(f"{path}: 'config' must be a JSON object.")
    return cfg


def push_model(model, repo_id: str, *, private: bool | None = None, token: str | None = None,
               commit_message: str | None = None, revision: str | None = None, **card_info: Any):
    """save_pretrained into a temp folder, then create the repo and upload it. Returns CommitInfo."""

    with tempfile.TemporaryDirectory(prefix="gan-augment-push-") as tmp:
        write_model_folder(model, tmp, **card_info)
        return upload_folder(Path(tmp), repo_id, private=private, token=token,
                       commit_message=commit_message or f"Upload {model.name} model with gan-augment",
                       revision=revision)



def upload_folder(folder: Path, repo_id: str, *, private, token, commit_message, revision):
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError

    if not REPO_ID_RE.match(repo_id):
        raise ConfigError(f"{repo_id!r} is not a Hub repo id; use owner/name (e.g. your-user/neutrophil-wgan-gp).")
    api = HfApi(token=token)
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        info = api.upload_folder(repo_id=url.repo_id, folder_path=str(folder), commit_message=commit_message,
                                 repo_type="model", revision=revision,
                                 allow_patterns=[f for f in PUSH_FILES if (folder / f).is_file()])
    except (HfHubHTTPError, HFValidationError, OSError) as exc:
        raise GanAugmentError(f"pushing to {repo_id} failed: {first_line(exc)}; check that you are logged "
                             "in (`hf auth login` or token=...) with write access.") from exc
    logging.getLogger("gan_augment.hub").info("pushed %s to %s (commit %s)", folder, repo_id, getattr(info, "oid", "?"))
    return info


def first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] + ("..." if len(text) > 300 else "")
