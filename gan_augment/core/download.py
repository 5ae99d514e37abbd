"""Where a model folder comes from: a local path, or a Hub repo fetched by huggingface_hub's
``snapshot_download`` into its own cache, so ``HF_HOME`` / ``HF_HUB_CACHE``, ``HF_ENDPOINT``,
``HF_HUB_OFFLINE``, tokens, ``revision``, ``force_download`` and ``local_files_only`` behave as in
every Hugging Face library. Only our fixed file names are fetched (``allow_patterns``): never code.

The local-path rule (:func:`local_path`) keeps a path from ever being sent to the Hub. A Hub that
cannot be reached fails in about a second with one line saying how to work offline.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from huggingface_hub import HfApi, constants, snapshot_download
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from gan_augment.core.errors import ConfigError, ModelLoadError
from gan_augment.core.format import (
    CONFIG_NAME,
    OPTIONAL_FILES,
    REPO_ID_RE,
    REQUIRED_FILES,
    first_line,
)
from gan_augment.core.version import __version__

log = logging.getLogger("gan_augment.hub")

SHA1_RE = re.compile(r"^[0-9a-f]{40}$")
HUB_PREFIX = "hf://"
#: What a model load fetches from a repo; nothing else in the repo is ever downloaded.
LOADED_FILES = REQUIRED_FILES + OPTIONAL_FILES
OFFLINE_HOWTO = ("to work offline set HF_HUB_OFFLINE=1 and load a model already in the Hub cache, pass a "
                 "local model folder, or use a short name bundled with gan-augment (`gan-augment models`)")


def local_path(name: str | os.PathLike) -> Path | None:
    """The local path a model argument names, or None when it may be a short name or a Hub repo id.

    A path is: a ``PathLike``; a string starting with ``.``, ``/`` or ``~``, holding a backslash or
    a drive, or more than one ``/``; anything that exists on disk; and ``a/b`` when ``./a`` is a
    folder (``runs/neutro`` once ``runs/`` exists). ``hf://owner/name`` always means the Hub.
    """
    if isinstance(name, os.PathLike):
        return Path(name).expanduser()
    s = str(name)
    if s.startswith(HUB_PREFIX):
        return None
    p = Path(s).expanduser()
    parts = s.split("@", 1)[0].split("/")
    if (s.startswith((".", "/", "~")) or "\\" in s or p.drive or len(parts) > 2 or "" in parts
            or p.exists() or (len(parts) == 2 and Path(parts[0]).expanduser().is_dir())):
        return p
    return None


def missing_folder(path: Path) -> ModelLoadError:
    models = sorted(c.name for c in path.parent.iterdir() if (c / CONFIG_NAME).is_file()) \
        if path.parent.is_dir() else None
    there = (f"{path.parent}/ does not exist either" if models is None
             else f"{path.parent}/ holds {', '.join(models[:5]) or 'no model folder'}")
    return ModelLoadError(
        f"no model folder at {path} ({there}); pass a folder written by save_pretrained or "
        f"`gan-augment train --out`, a short name (`gan-augment models`), or a Hub repo as hf://owner/name."
    )


def split_revision(name: str, revision: str | None) -> tuple[str, str | None]:
    """``owner/name@rev`` -> (``owner/name``, ``rev``); a second, different revision is an error."""
    name = name[len(HUB_PREFIX):] if name.startswith(HUB_PREFIX) else name
    if "@" in name:
        name, _, rev = name.partition("@")
        if revision is not None and revision != rev:
            raise ConfigError(f"two revisions given: {rev!r} in the name and revision={revision!r}; pass one.")
        revision = rev or None
    return name, revision


def locate(name: str | os.PathLike, revision: str | None = None, **fetch_kw) -> Path:
    """A local model folder for ``name``: the path itself, or a Hub repo id fetched with :func:`fetch`."""
    path = local_path(name)
    if path is not None:
        if not path.exists():
            raise missing_folder(path)
        return path
    repo_id, revision = split_revision(str(name), revision)
    if not REPO_ID_RE.match(repo_id):
        raise ModelLoadError(f"{name!r} is neither a local folder nor a Hub repo id (owner/name[@revision]); "
                             "check the spelling or the path.")
    return fetch(repo_id, revision, **fetch_kw)


def fetch(repo_id: str, revision: str | None = None, *, cache_dir: str | os.PathLike | None = None,
          local_files_only: bool = False, token: str | bool | None = None, force_download: bool = False,
          files: tuple[str, ...] = LOADED_FILES) -> Path:
    """The snapshot folder of ``repo_id@revision`` in the Hub cache holding ``files`` (those the repo has).

    A commit already in the cache is used with no network at all. Otherwise the Hub is first asked
    with a call huggingface_hub does not retry, so an unreachable Hub fails fast instead of after
    five retries (about 25 s).
    """
    offline = local_files_only or constants.is_offline_mode()
    if force_download and offline:
        raise ConfigError("force_download=True needs the network, but "
                          f"{'local_files_only=True' if local_files_only else 'HF_HUB_OFFLINE is set'}; drop one.")
    where = f"{repo_id}@{revision or 'main'}"
    kw = dict(revision=revision, cache_dir=cache_dir, token=token, allow_patterns=list(files),
              library_name="gan-augment", library_version=__version__)
    cached = None if force_download else _cached(repo_id, kw)
    if cached is not None and (offline or (revision is not None and SHA1_RE.match(revision))):
        log.info("%s: using the Hub cache at %s", where, cached)
        return cached
    if offline:
        why = "local_files_only=True" if local_files_only else "offline mode is on (HF_HUB_OFFLINE)"
        raise ModelLoadError(f"{where} is not in the Hub cache ({cache_dir or constants.HF_HUB_CACHE}) and {why}; "
                             "load it once online to fill the cache, or pass a local model folder.")
    try:
        if revision is not None and SHA1_RE.match(revision):
            # For a commit, snapshot_download skips its own (unretried) look-up and goes straight to
            # the file listing, which is retried: look the repo up first so a dead network fails fast.
            HfApi(token=token, library_name="gan-augment", library_version=__version__).repo_info(
                repo_id, revision=revision)
        folder = Path(snapshot_download(repo_id, force_download=force_download, **kw))
    except Exception as exc:  # (a cached branch is served by snapshot_download when the Hub is down)
        err = _hub_error(exc, repo_id, revision)
        if err is None:
            raise
        raise err from exc
    missing = [f for f in REQUIRED_FILES if f in files and not (folder / f).is_file()]
    if missing:
        raise ModelLoadError(f"{where} has no {' or '.join(missing)}; it is not a gan-augment model repo "
                             f"(those hold {' and '.join(REQUIRED_FILES)}, written by save_pretrained).")
    log.info("%s: %s the Hub cache at %s", where,
             "using" if cached is not None and folder == cached else "downloaded into", folder)
    return folder


def _cached(repo_id: str, kw: dict) -> Path | None:
    """The cached snapshot if it holds the required files (no network), else None."""
    try:
        folder = Path(snapshot_download(repo_id, local_files_only=True, **kw))
    except LocalEntryNotFoundError:  # also an incomplete snapshot (IncompleteSnapshotError)
        return None
    return folder if all((folder / f).is_file() for f in REQUIRED_FILES if f in kw["allow_patterns"]) else None


def _unreachable(exc: BaseException) -> BaseException | None:
    """The transport failure (DNS, refused connection, timeout) behind ``exc``, if that is what it is."""
    for e in (exc, exc.__cause__, exc.__context__):
        if e is None or isinstance(e, HfHubHTTPError):  # an HTTP error means the Hub answered
            continue
        if isinstance(e, (ConnectionError, TimeoutError)) or \
                type(e).__module__.split(".")[0] in ("httpx", "httpx2", "requests", "urllib3"):
            return e
    return None


def _hub_error(exc: BaseException, repo_id: str, revision: str | None) -> Exception | None:
    """One line naming the problem and the fix, or None for an error that is not the Hub's."""
    where = f"{repo_id}@{revision or 'main'}"
    if isinstance(exc, HFValidationError):
        return ConfigError(f"{repo_id!r} is not a valid Hub repo id ({first_line(exc)}); use owner/name.")
    if isinstance(exc, GatedRepoError):
        return ModelLoadError(f"{repo_id} is gated: accept its conditions on the Hub, then log in "
                              "(`hf auth login`) or pass token=....")
    if isinstance(exc, RepositoryNotFoundError):
        return ModelLoadError(f"Hub repo {repo_id!r} was not found (nor a local folder of that path); check "
                              "the name, or if it is private log in (`hf auth login`) or pass token=....")
    if isinstance(exc, RevisionNotFoundError):
        return ModelLoadError(f"{repo_id} has no revision {revision!r}; check the branch, tag or commit.")
    cause = _unreachable(exc)
    if cause is not None:
        return ModelLoadError(f"cannot reach the Hugging Face Hub for {where} ({type(cause).__name__}: "
                              f"{first_line(cause)}); {OFFLINE_HOWTO}.")
    if isinstance(exc, (HfHubHTTPError, OSError)):
        return ModelLoadError(f"fetching {where} failed: {first_line(exc)}; check the network, HF_ENDPOINT "
                              f"and your token and retry, or {OFFLINE_HOWTO}.")
    return None
