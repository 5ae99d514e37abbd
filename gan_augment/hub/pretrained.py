"""The public entry points of the hub layer: ``from_pretrained`` (a local folder, a short name from
``hub/``'s index, or a Hub repo id; the backend read from config.json) and ``push_to_hub`` /
``push_folder``."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError, HFValidationError

from gan_augment.core.contract import GenerativeAugmenter
from gan_augment.core.format import CARD_NAME, CONFIG_NAME, GRID_NAME, PUSH_FILES, read_config
from gan_augment.core.hubmixin import card_kwargs, check_repo_id, push_failed
from gan_augment.core.modelcard import render_card, write_sample_grid
from gan_augment.core.serialization import atomic_write_text
from gan_augment.hub.folder import load_folder
from gan_augment.hub.resolve import resolve

log = logging.getLogger("gan_augment.hub")


def from_pretrained(name_or_path: str | os.PathLike, revision: str | None = None,
                    cache_dir: str | os.PathLike | None = None, local_files_only: bool = False,
                    token: str | bool | None = None, force_download: bool = False,
                    device: Any = None) -> GenerativeAugmenter:
    """Load a model from a local folder, a short name in ``hub/``'s index, or a Hub repo id
    (``owner/name``, ``owner/name@revision`` or ``hf://owner/name``).

    Hub files go through huggingface_hub's cache (``cache_dir``, ``HF_HOME``, ``HF_HUB_OFFLINE``,
    ``local_files_only``, ``force_download``, ``token`` as usual). The backend named in config.json
    is taken from the installed plugins (else the error names the package to install); loading is
    strict: JSON config, safetensors weights checked by sha256, exact keys. Nothing is unpickled
    and no downloaded code runs."""
    folder = resolve(name_or_path, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only,
                     token=token, force_download=force_download)
    return load_folder(folder, device=device)


def push_to_hub(model: GenerativeAugmenter, repo_id: str, **kwargs: Any):
    """``model.push_to_hub(repo_id, ...)``: see :meth:`gan_augment.core.hubmixin.HubMixin.push_to_hub`."""
    return model.push_to_hub(repo_id, **kwargs)


def push_folder(folder: str | os.PathLike, repo_id: str, *, private: bool | None = None,
                token: str | None = None, commit_message: str | None = None,
                revision: str | None = None, **card_info: Any):
    """Upload a saved model folder (e.g. a ``gan-augment train --out`` folder) as it is.

    The folder is loaded first, so a broken model is never published; only the model files are
    uploaded (not checkpoints or logs), and a card is written if the folder has none. Hand-written
    rather than ModelHubMixin.push_to_hub, which would re-save the model and replace the folder's
    own config.json and card."""
    folder = Path(folder)
    check_repo_id(repo_id)
    card_info = card_kwargs(card_info, None)
    model = load_folder(folder)
    cfg = read_config(folder / CONFIG_NAME)
    with tempfile.TemporaryDirectory(prefix="gan-augment-push-") as tmp:
        stage = Path(tmp)
        for fname in PUSH_FILES:
            if (folder / fname).is_file():
                shutil.copy2(folder / fname, stage / fname)
        if not (stage / GRID_NAME).is_file():
            write_sample_grid(model, stage / GRID_NAME)
        if not (stage / CARD_NAME).is_file() or card_info:
            atomic_write_text(stage / CARD_NAME, render_card(cfg, **card_info))
        api = HfApi(token=token)
        try:
            url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
            info = api.upload_folder(repo_id=url.repo_id, folder_path=str(stage), repo_type="model",
                                     revision=revision, allow_patterns=sorted(p.name for p in stage.iterdir()),
                                     commit_message=commit_message or f"Upload {cfg['backend']} model with gan-augment")
        except (HfHubHTTPError, HFValidationError, OSError) as exc:
            raise push_failed(repo_id, exc) from exc
    log.info("pushed %s to %s (commit %s)", folder, repo_id, getattr(info, "oid", "?"))
    return info
