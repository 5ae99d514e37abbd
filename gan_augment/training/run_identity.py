"""What makes a run the same run: resume refuses to continue a checkpoint with other data, classes,
image layout or networks, since the result would be neither the old run nor a new one."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import torch

#: model settings named by what a user changes (the rest are named by their config key)
LAYOUT_KEYS = ("image_size", "channels")


def data_fingerprint(images: torch.Tensor, labels: torch.Tensor) -> str:
    """sha256 of the training rows exactly as the loop sees them (uint8 after resizing) and
    their labels: a changed file, split, class selection or size all change it."""
    h = hashlib.sha256()
    h.update(repr((tuple(images.shape), str(images.dtype))).encode())
    h.update(np.ascontiguousarray(images.numpy()).data)
    h.update(np.ascontiguousarray(labels.numpy().astype(np.int64)).data)
    return h.hexdigest()


def _show(value: Any) -> str:
    return repr(value) if not isinstance(value, list) else "[" + ", ".join(map(repr, value)) + "]"


def first_change(saved: dict[str, Any], now: dict[str, Any]) -> str | None:
    """The first difference between a checkpoint's identity and this run's, as "what: before ->
    now", or None. Both map ``data_classes``, ``data_sha256`` and ``model_config``; a key the
    checkpoint lacks (older checkpoints) is not compared."""
    if "data_classes" in saved and list(saved["data_classes"]) != list(now["data_classes"]):
        return f"class names {_show(saved['data_classes'])} -> {_show(now['data_classes'])}"
    old, new = saved.get("model_config") or {}, now.get("model_config") or {}
    for key in LAYOUT_KEYS:
        if key in old and old[key] != new.get(key):
            return f"{key.replace('_', ' ')} {old[key]} -> {new.get(key)}"
    if "class_names" in old and old["class_names"] is not None and old["class_names"] != new.get("class_names"):
        return f"class names {_show(old['class_names'])} -> {_show(new.get('class_names'))}"
    for key in sorted(old):  # a setting newer than the checkpoint is not compared
        if key not in LAYOUT_KEYS and key != "class_names" and old.get(key) != new.get(key):
            return f"network setting {key} {old.get(key)!r} -> {new.get(key)!r}"
    if "data_sha256" in saved and saved["data_sha256"] != now["data_sha256"]:
        return (f"training data (sha256 of the rows used {saved['data_sha256'][:12]}... -> "
                f"{now['data_sha256'][:12]}...)")
    return None
