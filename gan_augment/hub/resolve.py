"""Short names: ``hub/index.json`` pins a Hub repo, a commit and the sha256 of every file, and may
point at a copy bundled with the package (shipped as the data package ``gan_augment._hub``).

A bundled copy that verifies is used with no network; otherwise the pinned commit comes through
the Hub cache (core/download.py) and is checked against the index. A file that fails its check is
an error naming ``force_download=True``; nothing is deleted behind the user's back.
"""

from __future__ import annotations

import json
import logging
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any

from gan_augment.core.download import SHA1_RE, fetch, local_path, locate, split_revision
from gan_augment.core.errors import ConfigError, ModelLoadError
from gan_augment.core.format import PUSH_FILES, REPO_ID_RE, REQUIRED_FILES, sha256_file

log = logging.getLogger("gan_augment.hub")

INDEX_NAME = "index.json"
#: Point at another hub folder (an organisation's own list, or tests) instead of the bundled one.
HUB_DIR_ENV = "GAN_AUGMENT_HUB_DIR"
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


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


def resolve(name: str | os.PathLike, revision: str | None = None, cache_dir: str | os.PathLike | None = None,
            local_files_only: bool = False, token: str | bool | None = None,
            force_download: bool = False) -> Path:
    """A local folder holding the model ``name`` names: a local path (core/download.py's rule), else
    a short name from the index, else a Hub repo id ``owner/name[@revision]``."""
    fetch_kw = dict(cache_dir=cache_dir, local_files_only=local_files_only, token=token,
                    force_download=force_download)
    if local_path(name) is None:
        root = hub_dir()
        index = load_index(root)
        if str(name) in index:
            return resolve_short(str(name), index[str(name)], root, revision, **fetch_kw)
        if not REPO_ID_RE.match(split_revision(str(name), None)[0]):
            known = ", ".join(sorted(index)) or "(none listed yet)"
            raise ModelLoadError(f"{name!r} is not a local folder, a short name (known: {known}) or a Hub repo "
                                 "id (owner/name[@revision]); check the spelling or the path.")
    return locate(name, revision, **fetch_kw)


def resolve_short(name: str, entry: dict, root: Path, revision: str | None, **fetch_kw) -> Path:
    """The bundled copy if all its files match the index, else the pinned commit via the Hub cache."""
    if revision is not None and revision != entry["revision"]:
        raise ConfigError(f"{name!r} is a short name pinned to revision {str(entry['revision'])[:12]}; to load "
                          f"another revision pass the repo id: {entry['repo_id']}@{revision}.")
    files: dict[str, str] = entry["files"]
    problem = None
    if entry.get("folder") and not fetch_kw.get("force_download"):
        bundled = root / entry["folder"]
        missing = [f for f in files if not (bundled / f).is_file()]
        bad = [f for f, digest in files.items() if f not in missing and sha256_file(bundled / f) != digest]
        if not missing and not bad:
            log.info("%s: using the copy bundled with gan-augment at %s (sha256 of %d files verified)",
                     name, bundled, len(files))
            return bundled
        if bad:
            problem = (f"the bundled copy at {bundled} fails its sha256 check for {', '.join(bad)} "
                       "(a damaged install: pip install --force-reinstall gan-augment)")
            log.warning("%s: %s; trying the Hub copy instead", name, problem)
        else:
            log.info("%s: bundled copy has no %s; using the Hub copy", name, ", ".join(missing))
    repo_id, rev = entry["repo_id"], entry["revision"]
    if rev is None:
        raise ModelLoadError(
            f"{name!r} is not on the Hub yet (the index pins no revision), so only its bundled copy can "
            f"load, and {problem or 'that copy is incomplete'}; reinstall gan-augment "
            "(pip install --force-reinstall gan-augment) or load a local folder.")
    try:
        folder = fetch(repo_id, rev, files=tuple(files), **fetch_kw)
    except ModelLoadError as exc:
        if problem:
            raise ModelLoadError(f"{name}: {problem}, and the Hub copy is unavailable: {exc}") from exc
        raise
    for fname, digest in files.items():
        got = sha256_file(folder / fname) if (folder / fname).is_file() else None
        if got != digest:
            raise ModelLoadError(
                f"sha256 mismatch for {fname} of {name!r} ({repo_id}@{rev[:12]}): the index says "
                f"{digest[:16]}..., the cached copy {f'has {got[:16]}...' if got else 'is missing'}; re-download it with "
                f"from_pretrained({name!r}, force_download=True); if it fails again the repo no longer "
                "holds the published file: report it.")
    log.info("%s: using %s@%s from the Hub cache at %s (sha256 of %d files verified)",
             name, repo_id, rev[:12], folder, len(files))
    return folder
