"""Where model folders come from: a local folder, a short name from ``hub/``'s index, or a Hub repo id.

Downloads go through huggingface_hub's ``hf_hub_download`` so its cache, ``HF_ENDPOINT``,
``HF_HUB_OFFLINE`` and tokens behave exactly as in every other Hugging Face library. Only fixed file
names are fetched (config.json, model.safetensors, README.md, samples.png): never code.

Integrity: short names pin a commit and a sha256 per file, checked for the bundled copy and for
downloaded copies alike. Plain repo ids are checked against the cache's own content address (the
blob name is the file's git sha1, or its sha256 for LFS files). A cached file that fails a check is
removed from the cache, so a later load cannot pick it up as good.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any

from gan_augment.core.errors import ConfigError, ModelLoadError
from gan_augment.core.format import (
    OPTIONAL_FILES,
    PUSH_FILES,
    REPO_ID_RE,
    REQUIRED_FILES,
    first_line,
    sha256_file,
)
from gan_augment.core.version import __version__

log = logging.getLogger("gan_augment.hub")

INDEX_NAME = "index.json"
#: Point at another hub folder (an organisation's own list, or tests) instead of the bundled one.
HUB_DIR_ENV = "GAN_AUGMENT_HUB_DIR"

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
SHA1_RE = re.compile(r"^[0-9a-f]{40}$")


# ---- hashing ----------------------------------------------------------------------------
def git_blob_sha1(path: str | os.PathLike) -> str:
    """The git object id of a file: what the Hub uses as ETag (and cache blob name) for non-LFS files."""
    size = os.path.getsize(path)
    h = hashlib.sha1(f"blob {size}\0".encode())
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---- the short-name index -------------------------------------------------------------------
def hub_dir() -> Path:
    """The hub folder: ``$GAN_AUGMENT_HUB_DIR`` or the copy of ``hub/`` bundled in the package."""
    env = os.environ.get(HUB_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return Path(str(resources.files("gan_augment") / "_hub"))


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


def short_names() -> list[str]:
    return sorted(load_index())


# ---- resolution -----------------------------------------------------------------------------
def split_revision(name: str, revision: str | None) -> tuple[str, str | None]:
    if "@" in name:
        name, _, rev = name.partition("@")
        if revision is not None and revision != rev:
            raise ConfigError(f"two revisions given: {rev!r} in the name and revision={revision!r}; pass one.")
        revision = rev or None
    return name, revision


def resolve(name: str, revision: str | None = None, cache_dir: str | os.PathLike | None = None,
            local_files_only: bool = False, token: str | bool | None = None) -> Path:
    """Return a local folder holding config.json and model.safetensors for ``name``.

    ``name`` is, in this order: an existing local folder; a short name from the index; a Hub repo id
    ``owner/name`` with an optional ``@revision``.
    """
    p = Path(name).expanduser()
    if p.is_dir():
        log.info("loading %s from the local folder %s", name, p)
        return p
    root = hub_dir()
    index = load_index(root)
    if name in index:
        if revision is not None and revision != index[name]["revision"]:
            raise ConfigError(
                f"{name!r} is a short name pinned to revision {index[name]['revision'][:12]}; to load "
                f"another revision pass the repo id: {index[name]['repo_id']}@{revision}."
            )
        return _resolve_short(name, index[name], root, cache_dir, local_files_only, token)
    repo_id, rev = split_revision(name, revision)
    if REPO_ID_RE.match(repo_id):
        return _resolve_repo(repo_id, rev, cache_dir, local_files_only, token)
    known = ", ".join(sorted(index)) or "(none listed yet)"
    raise ModelLoadError(
        f"{name!r} is not a local folder, a short name (known: {known}) or a Hub repo id "
        "(owner/name[@revision]); check the spelling or the path."
    )


def _resolve_short(name: str, entry: dict, root: Path, cache_dir, local_files_only, token) -> Path:
    files: dict[str, str] = entry["files"]
    problem = None
    if entry.get("folder"):
        bundled = root / entry["folder"]
        missing = [f for f in files if not (bundled / f).is_file()]
        if not missing:
            bad = [f for f, digest in files.items() if sha256_file(bundled / f) != digest]
            if not bad:
                log.info("%s: using the copy bundled with gan-augment at %s (sha256 of %d files verified)",
                         name, bundled, len(files))
                return bundled
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
            "(pip install --force-reinstall gan-augment) or load a local folder."
        )
    origins, folder = [], None
    for fname, digest in files.items():
        cached = _cached_path(repo_id, fname, rev, cache_dir)
        try:
            path = _download(repo_id, fname, rev, cache_dir, local_files_only, token)
        except ModelLoadError as exc:
            if problem:
                raise ModelLoadError(f"{name}: {problem}, and the Hub copy is unavailable: {exc}") from exc
            raise
        got = sha256_file(path)
        if got != digest:
            _evict(path)
            raise ModelLoadError(
                f"sha256 mismatch for {fname} of {name!r} ({repo_id}@{rev[:12]}): index says "
                f"{digest[:16]}..., file has {got[:16]}...; the bad copy was removed from the Hub cache. "
                "Retry; if it persists the repo no longer holds the published file: report it."
            )
        origins.append("Hub cache" if cached else "downloaded")
        folder = folder or path.parent
    source = "the Hub cache" if all(o == "Hub cache" for o in origins) else "a download from the Hub"
    log.info("%s: using %s@%s from %s at %s (sha256 of %d files verified)",
             name, repo_id, rev[:12], source, folder, len(files))
    return folder


def _resolve_repo(repo_id: str, revision: str | None, cache_dir, local_files_only, token) -> Path:
    folder = None
    for fname in REQUIRED_FILES + OPTIONAL_FILES:
        required = fname in REQUIRED_FILES
        try:
            path = _download(repo_id, fname, revision, cache_dir, local_files_only, token, required=required)
        except ModelLoadError:
            if required:
                raise
            path = None
        if path is None:
            continue
        _check_cache_blob(path, repo_id, fname)
        if folder is None:
            folder = path.parent
        elif path.parent != folder:
            raise ModelLoadError(
                f"{repo_id}@{revision or 'main'} changed while downloading ({fname} comes from another "
                "commit); retry, or pin a commit with owner/name@<commit>."
            )
    log.info("loading %s@%s from the Hub cache at %s", repo_id, revision or "main", folder)
    return folder


def _cached_path(repo_id: str, fname: str, revision: str | None, cache_dir) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, fname, cache_dir=cache_dir, revision=revision), str)


def _download(repo_id: str, fname: str, revision: str | None, cache_dir, local_files_only: bool, token,
              required: bool = True) -> Path | None:
    """``hf_hub_download`` with its errors turned into one-line ModelLoadErrors naming the fix.

    Returns None for an optional file the repo does not have."""
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )


    where = f"{repo_id}@{revision or 'main'}"
    try:
        return Path(hf_hub_download(repo_id, fname, revision=revision, cache_dir=cache_dir,
                                    local_files_only=local_files_only, token=token,
                                    library_name="gan-augment", library_version=__version__))
    except HFValidationError as exc:
        raise ConfigError(f"{repo_id!r} is not a valid Hub repo id ({first_line(exc)}); use owner/name.") from exc
    except LocalEntryNotFoundError as exc:
        if not required:
            return None
        why = ("offline mode is on (HF_HUB_OFFLINE)" if constants.is_offline_mode()
               else "local_files_only=True" if local_files_only else "the Hub could not be reached")
        cache = cache_dir or constants.HF_HUB_CACHE
        raise ModelLoadError(
            f"{fname} of {where} is not in the Hub cache ({cache}) and {why}; load it once online "
            "to fill the cache, or pass a local model folder."
        ) from exc
    except GatedRepoError as exc:
        raise ModelLoadError(f"{repo_id} is gated: accept its conditions on the Hub, then log in "
                             "(`hf auth login`) or pass token=....") from exc
    except RepositoryNotFoundError as exc:
        raise ModelLoadError(f"Hub repo {repo_id!r} was not found (nor a local folder of that path); "
                             "check the name, or if it is private "
                             "log in (`hf auth login`) or pass token=....") from exc
    except RevisionNotFoundError as exc:
        raise ModelLoadError(f"{repo_id} has no revision {revision!r}; check the branch, tag or commit.") from exc
    except EntryNotFoundError as exc:
        if not required:
            return None
        raise ModelLoadError(f"{where} has no {fname}; it is not a gan-augment model repo (those hold "
                             f"{' and '.join(REQUIRED_FILES)}, written by save_pretrained).") from exc
    except (HfHubHTTPError, OSError) as exc:
        raise ModelLoadError(f"downloading {fname} of {where} failed: {first_line(exc)}; check the "
                             "network, HF_ENDPOINT and your token, then retry.") from exc


def _check_cache_blob(path: Path, repo_id: str, fname: str) -> None:
    """Check a cached file against its blob name (git sha1, or sha256 for LFS files)."""
    if not path.is_symlink():
        return  # no symlinks on this filesystem: the cache keeps plain copies without a content address
    blob = Path(os.path.realpath(path))
    name = blob.name
    if SHA256_RE.match(name):
        ok = sha256_file(blob) == name
    elif SHA1_RE.match(name):
        ok = git_blob_sha1(blob) == name
    else:
        return
    if not ok:
        _evict(path)
        raise ModelLoadError(
            f"{fname} of {repo_id} in the Hub cache does not match its content hash {name[:16]}... "
            "(truncated or corrupted); it was removed from the cache: load again to download it afresh."
        )


def _evict(path: Path) -> None:
    """Remove a snapshot entry and the blob behind it, so the cache cannot serve it again."""
    targets = [Path(os.path.realpath(path))] if path.is_symlink() else []
    for t in [path, *targets]:
        try:
            t.unlink()
        except FileNotFoundError:
            pass
    log.warning("removed %s from the Hub cache after a failed integrity check", path)




