"""Publish models to the Hugging Face Hub with huggingface_hub's HfApi (create_repo +
upload_folder): only the model files, never checkpoints or logs."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from gan_augment.core.format import CARD_NAME, CONFIG_NAME, GRID_NAME, PUSH_FILES, upload_folder
from gan_augment.core.modelcard import render_card, write_sample_grid
from gan_augment.core.serialization import atomic_write_text
from gan_augment.hub.folder import load_folder

log = logging.getLogger("gan_augment.hub")


def push_folder(folder: str | os.PathLike, repo_id: str, *, private: bool | None = None,
                token: str | None = None, commit_message: str | None = None,
                revision: str | None = None, **card_info: Any):
    """Upload a saved model folder (e.g. a ``gan-augment train --out`` folder).

    The folder is loaded first, so a broken model is never published; only the model files are
    uploaded (not checkpoints or logs), and a model card is written if the folder has none."""

    folder = Path(folder)
    model = load_folder(folder)
    cfg = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(prefix="gan-augment-push-") as tmp:
        stage = Path(tmp)
        for fname in PUSH_FILES:
            if (folder / fname).is_file():
                shutil.copy2(folder / fname, stage / fname)
        if not (stage / GRID_NAME).is_file():
            write_sample_grid(model, stage / GRID_NAME)
        if not (stage / CARD_NAME).is_file() or card_info:
            if card_info.get("metrics") is None and cfg.get("metrics"):
                card_info["metrics"] = cfg["metrics"]
            atomic_write_text(stage / CARD_NAME, render_card(cfg, **card_info))
        return upload_folder(stage, repo_id, private=private, token=token,
                       commit_message=commit_message or f"Upload {cfg['backend']} model with gan-augment",
                       revision=revision)
