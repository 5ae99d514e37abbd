"""List a published model under a short name in ``hub/index.json`` (and bundle a copy of it).

Usage: ``python -m gan_augment.hub.index FOLDER SHORT_NAME REPO_ID REVISION [--no-bundle]``.
See hub/README.md for the whole publishing procedure.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from gan_augment.core.errors import ConfigError, GanAugmentError
from gan_augment.core.folder import load
from gan_augment.core.format import OPTIONAL_FILES, REQUIRED_FILES, SHA1_RE
from gan_augment.core.serialization import atomic_write_text, sha256_file
from gan_augment.core.short_names import INDEX_NAME, hub_dir, load_index, validate_entry

log = logging.getLogger("gan_augment.hub")

SHORT_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
#: Files an index entry pins (the loss curve is not needed to load or judge a model).
INDEX_FILES = REQUIRED_FILES + OPTIONAL_FILES


def add_to_index(folder: str | os.PathLike, short_name: str, repo_id: str, revision: str | None,
                 hub: str | os.PathLike | None = None, bundle: bool = True,
                 description: str | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Pin ``repo_id@revision`` under ``short_name`` with the sha256 of each file of ``folder``.

    ``folder`` must hold exactly the files pushed at ``revision`` (a commit hash, e.g. the ``oid`` of
    the CommitInfo that push_to_hub returns). The folder is loaded first, so a broken model is never
    listed. With ``bundle`` the files are copied to ``hub/<short_name>/`` so the short name works
    offline from a fresh install. ``hub`` defaults to the source tree's hub/ (``$GAN_AUGMENT_HUB_DIR``
    or the package's bundled copy, which in an editable install is the repository's hub/).
    index.json is rewritten atomically; returns the new entry.
    """
    folder = Path(folder)
    root = Path(hub) if hub is not None else hub_dir()
    if not SHORT_NAME_RE.match(short_name):
        raise ConfigError(f"short name {short_name!r} must be lowercase letters, digits, '.', '_' or '-'.")
    if revision is None and not bundle:
        raise ConfigError("a model listed before it is pushed (revision None) must be bundled.")
    if revision is not None and not SHA1_RE.match(revision):
        raise ConfigError(
            f"revision {revision!r} is not a 40-character commit hash; pin the commit (the oid that "
            "push_to_hub returns, or HfApi().model_info(repo_id).sha), never a branch."
        )
    known = load(folder).digests  # refuse to list a model that does not load
    files = {f: known.get(f) or sha256_file(folder / f) for f in INDEX_FILES if (folder / f).is_file()}
    entry: dict[str, Any] = {"repo_id": repo_id, "revision": revision, "files": files,
                             "folder": short_name if bundle else None}
    if description:
        entry["description"] = description
    validate_entry(short_name, entry)
    index = load_index(root)
    if short_name in index and not overwrite and index[short_name] != entry:
        raise ConfigError(f"{short_name!r} is already listed ({index[short_name]['repo_id']}); "
                          "pass overwrite=True (--overwrite) to replace it.")
    if bundle:
        dest = root / short_name
        if dest.exists() and short_name not in index and dest.resolve() != folder.resolve():
            raise ConfigError(f"{dest} exists and is not a listed model (other tools keep files in hub/); "
                              "choose another short name.")
        if dest.resolve() != folder.resolve():
            dest.mkdir(parents=True, exist_ok=True)
            for f in files:
                tmp = dest / f".{f}.tmp"
                shutil.copyfile(folder / f, tmp)
                os.replace(tmp, dest / f)
            for stale in dest.iterdir():
                if stale.is_file() and stale.name not in files:
                    stale.unlink()
        bad = [f for f, d in files.items() if sha256_file(dest / f) != d]
        if bad:
            raise GanAugmentError(f"copying {', '.join(bad)} to {dest} changed the bytes; check the disk and retry.")
    index[short_name] = entry
    write_index(index, root)
    log.info("listed %s -> %s@%s (%d files%s)", short_name, repo_id, (revision or "unpushed")[:12], len(files),
             ", bundled" if bundle else "")
    return entry


def remove_from_index(short_name: str, hub: str | os.PathLike | None = None) -> None:
    root = Path(hub) if hub is not None else hub_dir()
    index = load_index(root)
    entry = index.pop(short_name, None)
    if entry is None:
        raise ConfigError(f"{short_name!r} is not listed in {root / INDEX_NAME}.")
    if entry.get("folder") and (root / entry["folder"]).is_dir():
        shutil.rmtree(root / entry["folder"])
    write_index(index, root)


def write_index(index: dict[str, Any], root: str | os.PathLike) -> Path:
    path = Path(root) / INDEX_NAME
    atomic_write_text(path, json.dumps(dict(sorted(index.items())), indent=2, sort_keys=True) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gan_augment.hub.index", description=__doc__.splitlines()[0])
    p.add_argument("folder")
    p.add_argument("short_name")
    p.add_argument("repo_id")
    p.add_argument("revision", help="40-character commit hash of the pushed files, or 'unpushed' "
                   "to list a bundled copy before its first push")
    p.add_argument("--hub", default=None, help="hub folder (default: the package's hub/)")
    p.add_argument("--no-bundle", action="store_true", help="list only; do not copy the files into hub/")
    p.add_argument("--description", default=None)
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    try:
        revision = None if args.revision.lower() == "unpushed" else args.revision
        entry = add_to_index(args.folder, args.short_name, args.repo_id, revision, hub=args.hub,
                             bundle=not args.no_bundle, description=args.description,
                             overwrite=args.overwrite)
    except GanAugmentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({args.short_name: entry}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
