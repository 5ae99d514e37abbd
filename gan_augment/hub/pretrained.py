"""The public entry points of the hub layer: ``from_pretrained`` (a local folder, a short name from
``hub/``'s index, or a Hub repo id) and ``push_to_hub`` / ``push_folder``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from gan_augment.core.contract import GenerativeAugmenter
from gan_augment.core.format import push_model
from gan_augment.hub.folder import load_folder
from gan_augment.hub.push import push_folder
from gan_augment.hub.resolve import resolve


def from_pretrained(name_or_path: str | Path, revision: str | None = None, cache_dir: str | None = None,
                    local_files_only: bool = False, token: str | None = None,
                    device: str | torch.device | None = None) -> GenerativeAugmenter:
    """Load a model from a local folder, a short name in ``hub/``'s index, or a Hub repo id
    (``owner/name`` or ``owner/name@revision``).

    Hub files go through huggingface_hub's cache (``cache_dir``, ``HF_HOME``, ``HF_HUB_OFFLINE``,
    ``local_files_only``, ``token`` as usual). Loading is strict and safe: JSON config, safetensors
    weights checked by sha256, the backend taken from the installed plugins; nothing is unpickled
    and no downloaded code runs."""

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

    return push_model(model, repo_id, private=private, token=token, commit_message=commit_message,
                      revision=revision, **card_info)




__all__ = ["from_pretrained", "load_folder", "push_folder", "push_to_hub"]
