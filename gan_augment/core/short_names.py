"""``hub/index.json``: where the short-name list lives and what a valid entry is. An entry pins a
Hub repo, a commit and the sha256 of every file, and may point at a copy bundled with the package
(shipped as the data package ``gan_augment._hub``). core/folder.py loads by these entries;
hub/index.py edits them."""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

from gan_augment.core.errors import ModelLoadError
from gan_augment.core.format import PUSH_FILES, REPO_ID_RE, REQUIRED_FILES, SHA1_RE, SHA256_RE

INDEX_NAME = "index.json"
#: Point at another hub folder (an organisation's own list, or tests) instead of the bundled one.
HUB_DIR_ENV = "GAN_AUGMENT_HUB_DIR"


def bundled_hub_dir() -> Path:
    """The data package ``gan_augment._hub``: the repository's hub/ in an editable install, its
    copy in an installed wheel."""
    return Path(str(resources.files("gan_augment._hub")))


def hub_dir() -> Path:
    """``$GAN_AUGMENT_HUB_DIR`` if set, else :func:`bundled_hub_dir`."""
    env = os.environ.get(HUB_DIR_ENV)
    return Path(env).expanduser() if env else bundled_hub_dir()


def load_index(directory: str | os.PathLike | None = None) -> dict[str, dict[str, Any]]:
    """Read and validate ``index.json``; a missing index means no short names."""
    path = Path(directory or hub_dir()) / INDEX_NAME
    if not path.is_file():
        return {}
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{path} is not valid JSON ({exc}); reinstall gan-augment or fix the file.") from exc
    if not isinstance(index, dict):
        raise ModelLoadError(f"{path} must hold a JSON object of short name -> entry; reinstall gan-augment.")
    for name, entry in index.items():
        validate_entry(name, entry, where=str(path))
    return index


def validate_entry(name: str, entry: Any, where: str = INDEX_NAME) -> None:
    def bad(why: str) -> ModelLoadError:
        return ModelLoadError(f"{where}: short name {name!r} {why}; fix the entry (see hub/README.md).")

    if not isinstance(entry, dict):
        raise bad("is not a JSON object")
    for key in ("repo_id", "revision", "files"):
        if key not in entry:
            raise bad(f"lacks {key!r}")
    if not REPO_ID_RE.match(str(entry["repo_id"])):
        raise bad(f"has repo_id {entry['repo_id']!r}, which is not of the form owner/name")
    if entry["revision"] is None:  # listed before its first push: the bundled copy is the only one
        if not entry.get("folder"):
            raise bad("has no revision (not pushed yet) and no bundled folder, so nothing can load it")
    elif not SHA1_RE.match(str(entry["revision"])):
        raise bad(f"pins revision {entry['revision']!r}, which is not a 40-character commit hash")
    files = entry["files"]
    if not isinstance(files, dict) or any(f not in files for f in REQUIRED_FILES):
        raise bad(f"must list at least {', '.join(REQUIRED_FILES)} under 'files'")
    for fname, digest in files.items():
        if fname not in PUSH_FILES:
            raise bad(f"lists {fname!r}, which gan-augment never loads")
        if not SHA256_RE.match(str(digest)):
            raise bad(f"gives {fname} the sha256 {digest!r}, which is not 64 lowercase hex digits")
    folder = entry.get("folder")
    if folder is not None and (not isinstance(folder, str) or Path(folder).is_absolute() or ".." in Path(folder).parts):
        raise bad(f"has folder {folder!r}; it must be a relative path inside hub/")
