"""Where model folders come from: local folders, the short-name index, or the Hugging Face Hub."""

from __future__ import annotations

import logging
from pathlib import Path

from gan_augment.errors import ModelLoadError

log = logging.getLogger("gan_augment.hub")


def resolve(name: str, revision=None, cache_dir=None, local_files_only=False, token=None) -> Path:
    p = Path(name).expanduser()
    if p.is_dir():
        log.info("loading model from local folder %s", p)
        return p
    raise ModelLoadError(f"{name!r} is not a local model folder.")


def push_model(model, repo_id, **kwargs):
    raise NotImplementedError
