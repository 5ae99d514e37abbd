"""A small on-disk index of the installed backends, so `gan-augment backends` answers without
importing torch (about 2 s on a 2-core CPU, most of the command's time).

The index is keyed by a fingerprint of the ``gan_augment`` entry points: each one's name, target,
distribution, version, and the modification time of the module file it points at, found with
``importlib.util.find_spec`` (which does not import it). Installing, removing, upgrading or
editing a plugin changes the fingerprint, and the next listing loads the plugins for real and
rewrites the index. Only stdlib imports here: that is the point of the module.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import importlib.util
import json
import os
import tempfile
from pathlib import Path

ENTRY_POINT_GROUP = "gan_augment"  # the group the plugin host (core.registry) loads


def env_flag(name: str) -> bool:
    """True when the environment variable ``name`` is 1, true, yes or on (any case)."""
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def index_path() -> Path:
    """``$GAN_AUGMENT_CACHE`` or ``$XDG_CACHE_HOME/gan-augment`` (``~/.cache/gan-augment``)."""
    root = os.environ.get("GAN_AUGMENT_CACHE") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gan-augment"
    return Path(root) / "backends.json"


def _module_mtime(target: str) -> float | None:
    top = target.split(":", 1)[0].strip().split(".")[0]  # a submodule's spec would import its parent
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not os.path.exists(spec.origin):
        return None
    return os.path.getmtime(spec.origin)


def fingerprint() -> str:
    """A hash of what decides the listing: every entry point of the group and its module file."""
    items = sorted(
        (ep.name, ep.value, ep.dist.name if ep.dist else "", ep.dist.version if ep.dist else "",
         _module_mtime(ep.value))
        for ep in md.entry_points(group=ENTRY_POINT_GROUP)
    )
    return hashlib.sha256(json.dumps(items).encode()).hexdigest()


def read_rows(path: Path | None = None) -> list[list[str]] | None:
    """The cached listing rows when the index matches the installed plugins, else None."""
    path = path or index_path()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("fingerprint") != fingerprint():
        return None
    rows = data.get("rows")
    return rows if isinstance(rows, list) else None


def write_rows(rows: list[list[str]], path: Path | None = None) -> None:
    """Store the listing (atomically); a read-only cache folder is not an error, only slower."""
    path = path or index_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".backends-", suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            json.dump({"fingerprint": fingerprint(), "rows": rows}, fh)
        os.replace(tmp, path)
    except OSError:
        return
