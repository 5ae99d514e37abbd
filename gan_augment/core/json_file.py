"""The one reader of the JSON files that travel beside weights (a model's config.json, a feature
extractor's config.json): a missing file, bad JSON, a non-object, a missing key or a format newer
than this library all get one clear ModelLoadError naming the file and the fix."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gan_augment.core.errors import ModelLoadError
from gan_augment.core.version import __version__


def read_json_file(path: Path, what: str, required: Iterable[str], newest_version: int,
                     fix: str = "download or copy it again") -> dict[str, Any]:
    """``path``'s JSON object, checked: ``what`` names the folder kind in errors ("a gan-augment
    model folder"), ``required`` keys must be present, ``format_version`` (when present, or when
    required) must be a positive integer no newer than ``newest_version``."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path.parent} has no {path.name}; it is not {what}.")
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{path} is not valid JSON ({exc}); {fix}.") from exc
    if not isinstance(cfg, dict):
        raise ModelLoadError(f"{path} must hold a JSON object, got {type(cfg).__name__}; {fix}.")
    for key in required:
        if key not in cfg:
            raise ModelLoadError(f"{path} lacks the key {key!r}; it is not {what} written by gan-augment.")
    if "format_version" in cfg:
        fv = cfg["format_version"]
        if not isinstance(fv, int) or isinstance(fv, bool) or fv < 1:
            raise ModelLoadError(f"{path} has format_version {fv!r}, which is not a positive integer; "
                                 "the file is damaged.")
        if fv > newest_version:
            raise ModelLoadError(f"{path} has format version {fv}, newer than this gan-augment "
                                 f"({__version__}) reads ({newest_version}); upgrade with "
                                 "`pip install -U gan-augment`.")
    return cfg
