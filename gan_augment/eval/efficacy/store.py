"""Finished runs on disk, one JSON file per run, named by a hash of every setting that affects it.

A rerun with the same settings finds the file and skips the run; any changed setting (data,
rows, model, recipe, arm, seed, generator weights, ratio, strategy, filter, library or harness
code version) gives another hash, so old and new results never merge.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from gan_augment.core.serialization import atomic_write_text
from gan_augment.core.version import __version__

FORMAT = "gan-augment-efficacy/1"
# modules whose code changes what a run measures; editing the report or CLI keeps stored runs
_RUN_CODE = ("arms.py", "train.py", "data.py")


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def settings_hash(settings: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(settings).encode()).hexdigest()


@lru_cache(maxsize=1)
def code_version() -> str:
    """gan-augment's version plus a hash of the harness modules that decide a run's numbers."""

    h = hashlib.sha256()
    here = Path(__file__).parent
    for name in _RUN_CODE:
        h.update((here / name).read_bytes())
    return f"{__version__}+{h.hexdigest()[:12]}"


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("gan-augment", "torch", "timm", "torchmetrics", "albumentations", "numpy", "scipy"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "not installed"
    return out


def write_json(path: str | Path, obj: Any) -> None:
    """Atomic: a temp file in the same folder, then os.replace."""
    atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=False, allow_nan=False) + "\n")


class RunStore:
    """``<root>/runs/<hash>.json``: {"settings": ..., "result": ...} for each finished run."""

    def __init__(self, root: str | Path):
        self.dir = Path(root) / "runs"

    def path(self, settings: dict[str, Any]) -> Path:
        return self.dir / f"{settings_hash(settings)}.json"

    def get(self, settings: dict[str, Any]) -> dict[str, Any] | None:
        p = self.path(settings)
        if not p.is_file():
            return None
        try:
            rec = json.loads(p.read_text())
        except (OSError, ValueError):
            return None  # a damaged file is a run to redo, not an error
        # the file must hold these exact settings (guards against a hand-copied or stale file)
        if not isinstance(rec, dict) or canonical(rec.get("settings")) != canonical(settings):
            return None
        return rec.get("result")

    def put(self, settings: dict[str, Any], result: dict[str, Any]) -> Path:
        p = self.path(settings)
        write_json(p, {"format": FORMAT, "settings": json.loads(canonical(settings)), "result": result})
        return p
