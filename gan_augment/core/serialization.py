"""Strict, pickle-free weight handling shared by the trainer, checkpoints and the hub client."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from gan_augment.core.errors import CheckpointError, ModelLoadError, WriteError

COMPILE_PREFIX = "_orig_mod."
_UMASK = os.umask(0)
os.umask(_UMASK)


def _publishable(tmp: str) -> None:
    """mkstemp makes 0600 files; give the final file the mode a plain open() would have."""
    os.chmod(tmp, 0o666 & ~_UMASK)
DDP_PREFIX = "module."


def clean_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the prefixes torch.compile and DDP add, so weights load into a plain module."""
    out = {}
    for k, v in state.items():
        for p in (COMPILE_PREFIX, DDP_PREFIX):
            if k.startswith(p):
                k = k[len(p):]
        out[k.replace("." + COMPILE_PREFIX, ".")] = v
    return out


def load_strict(module: nn.Module, state: dict[str, torch.Tensor], what: str = "model") -> None:
    """Load with missing/unexpected keys and wrong shapes reported as one clear error."""
    state = clean_keys(state)
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    bad_shapes = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(own[k].shape) != tuple(state[k].shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing keys {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    if unexpected:
        problems.append(f"unexpected keys {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
    if bad_shapes:
        problems.append(f"wrong shapes {bad_shapes[:3]}{' ...' if len(bad_shapes) > 3 else ''}")
    if problems:
        raise ModelLoadError(
            f"weights do not match the {what}: {'; '.join(problems)}. The weights were saved "
            "for a different config (image size, channels, width or classes); load them with "
            "the config.json saved beside them."
        )
    module.load_state_dict(state, strict=True)


def sha256_file(path: str | os.PathLike) -> str:
    """The file's sha256 (hex), read in 1 MiB chunks: the one hash of every file gan-augment pins."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Write ``path`` through ``write(tmp)`` into a temp file beside it, fsync, then rename over
    ``path``, so a reader sees the old file or the new one, never half of one.

    Any failure (full disk, no permission, read-only folder), whichever library raised it
    (the OS, safetensors, PIL), becomes one WriteError naming ``path``, not the hidden temp file;
    the previous file stays as it was and no temp file is left behind.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        _publishable(tmp)
        os.replace(tmp, path)
    except (OSError, SafetensorError) as exc:
        if tmp is not None:
            _silent_unlink(tmp)
        raise WriteError(f"cannot write {path}: {_reason(exc)}. {_previous(path)} Free some "
                         "disk space, or fix the folder's permissions or choose a writable one, then "
                         "try again.") from exc
    except BaseException:
        if tmp is not None:
            _silent_unlink(tmp)
        raise
    return path


def _reason(exc: BaseException) -> str:
    """The OS's words for a failed write ("No space left on device"), whoever raised it."""
    if isinstance(exc, (FileExistsError, NotADirectoryError)):  # from mkdir of the folders on the way
        return "a part of that path is a file, not a folder"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = " ".join(str(exc).split())  # safetensors: "Error while serializing: I/O error: No space ..."
    for code in (errno.ENOSPC, errno.EACCES, errno.EROFS, errno.EDQUOT, errno.EPERM):
        if os.strerror(code) in text:
            return os.strerror(code)
    return text or type(exc).__name__


def _previous(path: Path) -> str:
    return "The previous file there is untouched." if path.exists() else "Nothing was written there."


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)

    return atomic_write(path, write)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save_safetensors(
    tensors: dict[str, torch.Tensor], path: str | os.PathLike, metadata: dict[str, str] | None = None
) -> Path:
    """safetensors through :func:`atomic_write` (tensors moved to the CPU and made contiguous)."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def read_safetensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a safetensors file, turning truncation or corruption into a clear error."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"weights file not found: {path}.")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelLoadError(
            f"{path} is not a readable safetensors file ({exc}); it is truncated or corrupted. "
            "Download or copy it again."
        ) from exc


def read_safetensors_metadata(path: str | os.PathLike) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})


def _silent_unlink(p: str) -> None:
    try:
        os.unlink(p)
    except OSError:
        pass


# ---- nested state (optimizers, schedulers, RNG) as tensors + JSON, so checkpoints need no pickle
def flatten_state(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Move every tensor of a nested structure into ``tensors``; return a JSON-able skeleton."""
    if torch.is_tensor(obj):
        tensors[prefix] = obj
        return {"__tensor__": prefix}
    if isinstance(obj, dict):
        return {"__dict__": [[_key(k), flatten_state(v, f"{prefix}.{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        items = [flatten_state(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]
        return {"__tuple__": items} if isinstance(obj, tuple) else items
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise CheckpointError(f"cannot store {type(obj).__name__} at {prefix} in a checkpoint")


def unflatten_state(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(skeleton, dict):
        if "__tensor__" in skeleton:
            return tensors[skeleton["__tensor__"]]
        if "__dict__" in skeleton:
            return {_unkey(k): unflatten_state(v, tensors) for k, v in skeleton["__dict__"]}
        if "__tuple__" in skeleton:
            return tuple(unflatten_state(v, tensors) for v in skeleton["__tuple__"])
    if isinstance(skeleton, list):
        return [unflatten_state(v, tensors) for v in skeleton]
    return skeleton


def _key(k: Any) -> list:
    return ["i", k] if isinstance(k, int) else ["s", str(k)]


def _unkey(k: list) -> Any:
    return int(k[1]) if k[0] == "i" else k[1]


def dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True)
