"""The one owner of a model folder: find it, read and verify it, build the backend it names, write
it and push it. Every load in gan-augment (``gan_augment.from_pretrained``, ``Backend.from_pretrained``,
the CLI, the efficacy harness) and every save and push goes through here.

One load resolves the name once, reads config.json once and hashes each file once: a short name's
bundled or cached files are hashed against hub/index.json, and the weights' digest found there
stands in for hashing them again against config.json. Hub repos come through huggingface_hub's
``snapshot_download`` and its cache, so ``HF_HOME`` / ``HF_HUB_CACHE``, ``HF_ENDPOINT``,
``HF_HUB_OFFLINE``, tokens, ``revision``, ``force_download`` and ``local_files_only`` behave as in
every Hugging Face library; only our fixed file names are fetched, never code. It sits in core
because the contract (core/contract.py) saves, loads and pushes through :class:`HubMixin`.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huggingface_hub import (
    HfApi,
    ModelCard,
    ModelHubMixin,
    constants,
    metadata_load,
    snapshot_download,
)
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from gan_augment.core.errors import (
    BackendNotFoundError,
    ConfigError,
    GanAugmentError,
    ModelLoadError,
)
from gan_augment.core.format import (
    CARD_NAME,
    CONFIG_NAME,
    GRID_NAME,
    OPTIONAL_FILES,
    PUSH_FILES,
    REPO_ID_RE,
    REQUIRED_FILES,
    SHA1_RE,
    WEIGHTS_NAME,
    first_line,
    model_config,
    read_config,
    refetch_hint,
)
from gan_augment.core.modelcard import render_card, write_sample_grid
from gan_augment.core.serialization import (
    atomic_save_safetensors,
    atomic_write_text,
    read_safetensors,
    read_safetensors_metadata,
    sha256_file,
)
from gan_augment.core.short_names import hub_dir, load_index
from gan_augment.core.version import __version__

log = logging.getLogger("gan_augment.hub")

HUB_PREFIX = "hf://"
#: What a model load fetches from a repo; nothing else in the repo is ever downloaded.
LOADED_FILES = REQUIRED_FILES + OPTIONAL_FILES
#: What a model card takes (core/modelcard.py render_card); ``metrics`` also go to config.json.
CARD_KEYS = ("license", "datasets", "citation", "data_description", "metrics", "extra", "tags")
OFFLINE_HOWTO = ("to work offline set HF_HUB_OFFLINE=1 and load a model already in the Hub cache, pass a "
                 "local model folder, or use a short name bundled with gan-augment (`gan-augment models`)")


@dataclass(frozen=True)
class Found:
    """A model folder on disk and the sha256 of the files already checked on the way there."""

    folder: Path
    verified: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Loaded:
    """What one load produced: the model, where it came from, its config and its files' digests."""

    model: Any
    folder: Path
    config: dict[str, Any]
    digests: dict[str, str]


# ---- find ---------------------------------------------------------------------------------------
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


def split_revision(name: str, revision: str | None) -> tuple[str, str | None]:
    """``owner/name@rev`` -> (``owner/name``, ``rev``); a second, different revision is an error."""
    name = name[len(HUB_PREFIX):] if name.startswith(HUB_PREFIX) else name
    if "@" in name:
        name, _, rev = name.partition("@")
        if revision is not None and revision != rev:
            raise ConfigError(f"two revisions given: {rev!r} in the name and revision={revision!r}; pass one.")
        revision = rev or None
    return name, revision


def find(name: str | os.PathLike, revision: str | None = None, *, cache_dir: str | os.PathLike | None = None,
         local_files_only: bool = False, token: str | bool | None = None, force_download: bool = False) -> Found:
    """The folder ``name`` names: a local path (:func:`local_path`), else a short name from
    hub/index.json, else a Hub repo id ``owner/name[@revision]`` fetched into the Hub cache."""
    fetch_kw = dict(cache_dir=cache_dir, local_files_only=local_files_only, token=token,
                    force_download=force_download)
    path = local_path(name)
    if path is not None:
        if not path.exists():
            raise _missing_folder(path)
        return Found(path)
    root = hub_dir()
    index = load_index(root)
    if str(name) in index:
        return _find_short(str(name), index[str(name)], root, revision, **fetch_kw)
    repo_id, revision = split_revision(str(name), revision)
    if not REPO_ID_RE.match(repo_id):
        known = ", ".join(sorted(index)) or "(none listed yet)"
        raise ModelLoadError(f"{name!r} is not a local folder, a short name (known: {known}) or a Hub repo "
                             "id (owner/name[@revision]); check the spelling or the path.")
    return Found(fetch(repo_id, revision, **fetch_kw))


def _missing_folder(path: Path) -> ModelLoadError:
    models = sorted(c.name for c in path.parent.iterdir() if (c / CONFIG_NAME).is_file()) \
        if path.parent.is_dir() else None
    there = (f"{path.parent}/ does not exist either" if models is None
             else f"{path.parent}/ holds {', '.join(models[:5]) or 'no model folder'}")
    return ModelLoadError(
        f"no model folder at {path} ({there}); pass a folder written by save_pretrained or "
        f"`gan-augment train --out`, a short name (`gan-augment models`), or a Hub repo as hf://owner/name."
    )


def _find_short(name: str, entry: dict, root: Path, revision: str | None, **fetch_kw) -> Found:
    """The bundled copy if all its files match the index, else the pinned commit via the Hub cache;
    either way each file is hashed once, here. Nothing is deleted behind the user's back."""
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
            return Found(bundled, dict(files))
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
    return Found(folder, dict(files))


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


# ---- read and verify ----------------------------------------------------------------------------
def backend_class(cfg: dict[str, Any], where: str) -> type:
    """The installed class of config.json's ``backend`` (never anything from the folder), or an
    error naming the package to install."""
    # Imported here: the registry imports the contract, which imports this module.
    from gan_augment.core.registry import get_host

    try:
        return get_host().get(cfg["backend"]).cls
    except BackendNotFoundError as exc:
        dist = cfg.get("backend_distribution")
        if dist in ("gan-augment", "gan_augment"):
            fix = "it ships with gan-augment itself: upgrade with `pip install -U gan-augment`"
        elif dist and dist not in ("unknown", "runtime"):
            fix = f"install its package: `pip install {dist}`"
        else:
            fix = "install the package that provides it (config.json does not name one)"
        raise ModelLoadError(
            f"{where} needs the backend {cfg['backend']!r}, which is not installed; {fix}."
        ) from exc


def load(name_or_path: str | os.PathLike, *, cls: type | None = None, revision: str | None = None,
         device: Any = None, **fetch_kw: Any) -> Loaded:
    """The one load: find the folder, read config.json, build ``cls`` (or, for None, the backend
    config.json names), load the weights strictly. ``fetch_kw``: cache_dir, local_files_only,
    token, force_download."""
    # Imported here: the registry imports the contract, which imports this module.
    from gan_augment.core.registry import ensure_named

    found = find(name_or_path, revision, **fetch_kw)
    folder = found.folder
    cfg = read_config(folder / CONFIG_NAME)
    if cls is None:
        cls = backend_class(cfg, str(folder))
    elif cfg["backend"] != ensure_named(cls):
        raise ModelLoadError(f"{folder} holds a {cfg['backend']!r} model, not a {cls.name!r} one; load it "
                             "with gan_augment.from_pretrained(...), which builds the backend it names.")
    try:
        model = cls(**cfg["config"])
    except Exception as exc:
        raise ModelLoadError(f"{folder}: config.json does not build a {cls.name!r} model: "
                             f"{first_line(exc)}") from exc
    digests = load_weights(model, folder, cfg, found.verified)
    if device is not None:
        model.to(device)
    return Loaded(model, folder, cfg, digests)


def load_weights(model: Any, directory: Path, cfg: dict[str, Any], verified: dict[str, str]) -> dict[str, str]:
    """Load the weights beside ``cfg`` into ``model`` strictly: readable safetensors, the sha256
    recorded in config.json (hashed here unless ``verified`` already holds it), the backend named
    in the file's metadata, exact keys and shapes. Returns the digests known after the load."""
    weights = directory / WEIGHTS_NAME
    if not weights.is_file():
        raise ModelLoadError(
            f"{directory} has {CONFIG_NAME} but no {WEIGHTS_NAME}; the folder is incomplete: copy or "
            "download the weights beside config.json, or save the model again with save_pretrained."
        )
    try:
        state = read_safetensors(weights)  # header or length damage shows up here
    except ModelLoadError as exc:
        hint = refetch_hint(directory)
        raise ModelLoadError(" ".join(str(exc).split()) + (f" ({hint})" if hint else "")) from exc
    digests = dict(verified)
    expected = cfg.get("weights_sha256")
    if expected is not None:  # payload damage (flipped bytes inside a tensor) only shows up here
        got = digests.get(WEIGHTS_NAME) or sha256_file(weights)
        digests[WEIGHTS_NAME] = got
        if got != expected:
            raise ModelLoadError(
                f"{weights} does not match the sha256 recorded in {CONFIG_NAME} ({got[:16]}... vs "
                f"{str(expected)[:16]}...): it is corrupted or was replaced; "
                f"{refetch_hint(directory) or 'download or copy it again'}."
            )
    saved_backend = read_safetensors_metadata(weights).get("backend")
    if saved_backend is not None and saved_backend != cfg["backend"]:
        raise ModelLoadError(
            f"{weights} holds {saved_backend!r} weights but {CONFIG_NAME} says {cfg['backend']!r}; "
            "the two files come from different models: keep the pair save_pretrained wrote together."
        )
    try:
        model.load_state_dict(state)
    except GanAugmentError:
        raise
    except Exception as exc:  # a config that builds no network: say so, never a torch traceback
        raise ModelLoadError(f"{directory}: config.json does not describe a loadable {cfg['backend']!r} "
                             f"model ({type(exc).__name__}: {exc}); re-save it with save_pretrained.") from exc
    model.training_summary = cfg.get("training") or {}
    model.metrics = cfg.get("metrics")
    return digests


def from_pretrained(name_or_path: str | os.PathLike, revision: str | None = None,
                    cache_dir: str | os.PathLike | None = None, local_files_only: bool = False,
                    token: str | bool | None = None, force_download: bool = False, device: Any = None):
    """Load a model from a local folder, a short name in ``hub/``'s index, or a Hub repo id
    (``owner/name``, ``owner/name@revision`` or ``hf://owner/name``).

    Hub files go through huggingface_hub's cache (``cache_dir``, ``HF_HOME``, ``HF_HUB_OFFLINE``,
    ``local_files_only``, ``force_download``, ``token`` as usual). The backend named in config.json
    is taken from the installed plugins (else the error names the package to install); loading is
    strict: JSON config, safetensors weights checked by sha256, exact keys. Nothing is unpickled
    and no downloaded code runs."""
    return load(name_or_path, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only,
                token=token, force_download=force_download, device=device).model


def load_folder(directory: str | os.PathLike, device: Any = None):
    """Load a local model folder (a path, never a name looked up elsewhere)."""
    return load(Path(directory), device=device).model


def card_summary(folder: str | Path) -> dict[str, Any]:
    """What `gan-augment info` prints, read from config.json and the card's front matter only
    (no weights are loaded and the backend need not be installed)."""
    folder = Path(folder)
    cfg = read_config(folder / CONFIG_NAME)
    meta = {}
    if (folder / CARD_NAME).is_file():
        try:
            meta = metadata_load(folder / CARD_NAME) or {}
        except Exception:  # a broken card must not hide the config
            meta = {}
    c, h, w = cfg.get("image_shape", [None, None, None])
    return {
        "folder": str(folder),
        "backend": cfg["backend"],
        "backend_distribution": cfg.get("backend_distribution"),
        "backend_version": cfg.get("backend_version"),
        "conditional": cfg.get("conditional"),
        "classes": cfg.get("class_names"),
        "image_size": f"{h}x{w}, {c} channel{'s' if c != 1 else ''}",
        "metrics": cfg.get("metrics") or {},
        "license": meta.get("license", "not stated (no model card)"),
        "datasets": meta.get("datasets") or [],
        "training_images": (cfg.get("training") or {}).get("images"),
        "format_version": cfg.get("format_version"),
        "config": cfg.get("config", {}),
    }


# ---- write --------------------------------------------------------------------------------------
def card_kwargs(card_info: dict[str, Any], model_card_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    merged = {**(model_card_kwargs or {}), **card_info}
    unknown = sorted(set(merged) - set(CARD_KEYS))
    if unknown:
        raise ConfigError(f"unknown model card field {unknown[0]!r}; the card takes {', '.join(CARD_KEYS)}.")
    return merged


def write_model_files(model: Any, directory: Path, metrics: dict | None = None) -> dict[str, Any]:
    """Write model.safetensors, then config.json (which carries the weights' sha256), each
    atomically: an interrupted save leaves the previous pair in place. Returns the config."""
    cfg = model_config(model, metrics)
    weights = directory / WEIGHTS_NAME
    atomic_save_safetensors(model.state_dict(), weights, metadata={"format": "pt", "backend": model.name})
    # safetensors cannot detect payload damage (only its header is structured): the sha256 can.
    cfg["weights_sha256"] = sha256_file(weights)
    atomic_write_text(directory / CONFIG_NAME, json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    return cfg


def save(model: Any, directory: str | os.PathLike, *, card: bool = True, **card_info: Any) -> Path:
    """Write the model files, then (unless ``card=False``) samples.png and README.md; each atomically."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_model_files(model, directory, metrics=card_info.get("metrics"))
    if card:
        write_sample_grid(model, directory / GRID_NAME)
        atomic_write_text(directory / CARD_NAME, render_card(model_config(model, card_info.get("metrics")), **card_info))
    return directory


# ---- push ---------------------------------------------------------------------------------------
def check_repo_id(repo_id: str) -> None:
    if not REPO_ID_RE.match(str(repo_id)):
        raise ConfigError(f"{repo_id!r} is not a Hub repo id; use owner/name (e.g. your-user/neutrophil-wgan-gp).")


def push_to_hub(model: Any, repo_id: str, *, private: bool | None = None, token: str | None = None,
                commit_message: str | None = None, revision: str | None = None,
                create_pr: bool | None = None, **card_info: Any):
    """Save ``model`` to a temporary folder and upload it (:func:`upload`). ``card_info`` as for
    save_pretrained. Returns the CommitInfo; its ``oid`` is the commit to pin in hub/index.json."""
    check_repo_id(repo_id)
    card_info = card_kwargs(card_info)
    with tempfile.TemporaryDirectory(prefix="gan-augment-push-") as tmp:
        save(model, tmp, **card_info)
        return upload(Path(tmp), repo_id, model.name, private=private, token=token, revision=revision,
                      create_pr=create_pr, commit_message=commit_message)


def push_folder(folder: str | os.PathLike, repo_id: str, *, private: bool | None = None,
                token: str | None = None, commit_message: str | None = None,
                revision: str | None = None, create_pr: bool | None = None, **card_info: Any):
    """Upload a saved model folder (e.g. a ``gan-augment train --out`` folder) as it is.

    The folder is loaded first, so a broken model is never published; only the model files are
    uploaded (not checkpoints or logs), and a card and sample grid are written if the folder has
    none. The user's folder is never modified."""
    folder = Path(folder)
    check_repo_id(repo_id)
    card_info = card_kwargs(card_info)
    loaded = load(folder)
    with tempfile.TemporaryDirectory(prefix="gan-augment-push-") as tmp:
        stage = Path(tmp)
        for fname in PUSH_FILES:
            if (folder / fname).is_file():
                shutil.copy2(folder / fname, stage / fname)
        if not (stage / GRID_NAME).is_file():
            write_sample_grid(loaded.model, stage / GRID_NAME)
        if not (stage / CARD_NAME).is_file() or card_info:
            atomic_write_text(stage / CARD_NAME, render_card(loaded.config, **card_info))
        info = upload(stage, repo_id, loaded.config["backend"], private=private, token=token,
                      revision=revision, create_pr=create_pr, commit_message=commit_message)
    log.info("pushed %s to %s (commit %s)", folder, repo_id, getattr(info, "oid", "?"))
    return info


def upload(stage: Path, repo_id: str, backend: str, *, private: bool | None, token: str | None,
           revision: str | None, create_pr: bool | None, commit_message: str | None):
    """The one upload: create the repo if needed, then commit the model files of ``stage`` (never
    anything else) to ``revision`` (a branch, default main) with HfApi.upload_folder."""
    api = HfApi(token=token, library_name="gan-augment", library_version=__version__)
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        return api.upload_folder(repo_id=url.repo_id, folder_path=str(stage), repo_type="model",
                                 revision=revision, create_pr=create_pr, allow_patterns=list(PUSH_FILES),
                                 commit_message=commit_message or f"Upload {backend} model with gan-augment")
    except (HfHubHTTPError, HFValidationError, OSError) as exc:
        raise GanAugmentError(f"pushing to {repo_id} failed: {first_line(exc)}; check that you are logged in "
                              "(`hf auth login` or token=...) with write access.") from exc


# ---- the contract's side ------------------------------------------------------------------------
class HubMixin(ModelHubMixin):
    """The Hub side of :class:`gan_augment.GenerativeAugmenter`: huggingface_hub's ModelHubMixin
    with its hooks (``_save_pretrained``, ``_from_pretrained``, ``generate_model_card``) and its
    public methods on this module's one path each. Why not the mixin's own methods: its
    save_pretrained deletes config.json before writing the weights and never replaces a README.md,
    its from_pretrained passes config.json's top-level keys to the constructor, and its push saves
    through those; tests/test_hub.py shows each."""

    def __new__(cls, *args: Any, **kwargs: Any):
        """Skip ModelHubMixin.__new__, which records the raw constructor arguments as
        ``_hub_mixin_config``: our config is ``self.config`` (validated, defaults filled in) and
        config.json records it, so a second, unvalidated copy could only disagree."""
        return object.__new__(cls)

    def save_pretrained(self, save_directory: str | os.PathLike, *, card: bool = True,
                        config: Any = None, model_card_kwargs: dict | None = None, **card_info: Any) -> Path:
        """Write model.safetensors and config.json, then (unless ``card=False``, what the trainer
        uses at every checkpoint) samples.png and the README.md model card; each file atomically.
        ``card_info``: license, datasets, citation, data_description, metrics, extra, tags.
        Returns the folder."""
        if config is not None:
            raise ConfigError("save_pretrained takes no config: a model's config is fixed when it is created; "
                              "create the model with the config you want, then save it.")
        return save(self, save_directory, card=card, **card_kwargs(card_info, model_card_kwargs))

    def _save_pretrained(self, save_directory: Path, metrics: dict | None = None) -> None:
        """The mixin's hook: model.safetensors, then our config.json carrying the weights' sha256."""
        write_model_files(self, Path(save_directory), metrics)

    def generate_model_card(self, *args: Any, **card_info: Any) -> ModelCard:
        """Our card (core/modelcard.py) instead of the mixin's template."""
        return ModelCard(render_card(model_config(self, card_info.get("metrics")), **card_info))

    def push_to_hub(self, repo_id: str, *, private: bool | None = None, token: str | None = None,
                    commit_message: str | None = None, revision: str | None = None,
                    create_pr: bool | None = None, model_card_kwargs: dict | None = None, **card_info: Any):
        """Upload the model files (never anything else) in one commit: :func:`push_to_hub`."""
        return push_to_hub(self, repo_id, private=private, token=token, commit_message=commit_message,
                           revision=revision, create_pr=create_pr, **card_kwargs(card_info, model_card_kwargs))

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, *, revision: str | None = None,
                        cache_dir: str | os.PathLike | None = None, local_files_only: bool = False,
                        token: str | bool | None = None, force_download: bool = False,
                        device: Any = None):
        """Load a model of this backend from anything :func:`from_pretrained` takes (a short name,
        a local folder, a Hub repo id with revision, the offline cache); a folder holding another
        backend is an error."""
        return cls._from_pretrained(model_id=name_or_path, revision=revision, cache_dir=cache_dir,
                                    force_download=force_download, local_files_only=local_files_only,
                                    token=token, device=device)

    @classmethod
    def _from_pretrained(cls, *, model_id: str | os.PathLike, revision: str | None,
                         cache_dir: str | os.PathLike | None, force_download: bool,
                         local_files_only: bool, token: str | bool | None, device: Any = None):
        """The mixin's hook, on the one load path."""
        if inspect.isabstract(cls):
            raise ConfigError(f"{cls.__name__} cannot tell which backend to build; use "
                              "gan_augment.from_pretrained(...), which reads it from config.json, or a "
                              "backend's own class.")
        return load(model_id, cls=cls, revision=revision, cache_dir=cache_dir, force_download=force_download,
                    local_files_only=local_files_only, token=token, device=device).model
