"""Image datasets from .npz, ImageFolder directories and CSV files.

Labels are read without decoding images (npz arrays load one at a time; folders and CSVs hold
labels in names), so the mixer can plan counts cheaply. Images are uint8, channel-first. Folders and
CSVs may list DICOM and NIfTI files (read by gan_augment.core.medical).
"""

from __future__ import annotations

import csv
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gan_augment.core.errors import ConfigError, DataError
from gan_augment.core.layout import match_layout
from gan_augment.core.medical import MEDICAL_SUFFIXES, check_window, medical_kind, read_medical
from gan_augment.core.naming import did_you_mean

MIN_SIDE = 4
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp"}
FILE_SUFFIXES = IMAGE_SUFFIXES | set(MEDICAL_SUFFIXES)
SHARED_DATA_HINT = (
    "The PBC blood-cell data (Acevedo et al., Data in Brief 30 (2020) 105474, CC BY 4.0) "
    "is expected at ../shared/data/."
)


class ImageDataset(torch.utils.data.Dataset):
    """Images (uint8, C x H x W) with integer labels and class names.

    ``images`` is either an in-memory uint8 array (N, H, W, C) or a list of file paths decoded
    on access. ``labels`` index ``class_names``. ``read_options`` (``window``, ``slice_index``)
    go to the DICOM/NIfTI reader. ``split`` names the file's split the rows come from ("train",
    "test", or "test+train" when a file was read whole; None when unknown), so code that must never
    see test images can refuse them.
    """

    def __init__(self, images: np.ndarray | Sequence[str], labels: np.ndarray,
                 class_names: Sequence[str], image_size: int | None = None,
                 channels: int | None = None, source: str = "memory",
                 read_options: dict | None = None, split: str | None = None, labelled: bool = True):
        self._images = images
        #: False for a file without labels: every image is then class 0 of one class
        self.labelled = labelled
        self.read_options = dict(read_options or {})
        self.labels = np.asarray(labels, dtype=np.int64)
        self.class_names = [str(c) for c in class_names]
        self.image_size = image_size
        self.channels = channels
        self.source = source
        self.split = split
        if len(self.labels) != len(images):
            raise DataError(f"{source}: {len(images)} images but {len(self.labels)} labels.")
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
            raise DataError(
                f"{source}: labels must lie in 0..{len(self.class_names) - 1} "
                f"(one per class name), found {self.labels.min()}..{self.labels.max()}."
            )
        self._cache: torch.Tensor | None = None

    # labels without decoding
    @property
    def targets(self) -> list[int]:
        return self.labels.tolist()

    def __len__(self) -> int:
        return len(self.labels)

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(self.class_names))
        return {n: int(c) for n, c in zip(self.class_names, counts)}

    def stored_layout(self) -> tuple[int, list[tuple[int, int]]]:
        """(channels, distinct (H, W) sizes) of the images this dataset yields, read from array
        shapes or file headers without decoding pixels: what a model follows when create() was
        given no channels or image_size. Files in colour anywhere make it 3 channels."""
        ch, size = self.channels, self.image_size
        if ch is not None and size is not None:
            return ch, [(size, size)] if len(self) else []
        if isinstance(self._images, np.ndarray):
            shape = self._images.shape
            found_ch = shape[-1] if self._images.ndim == 4 else 1
            found = [(int(shape[1]), int(shape[2]))] if len(self) else []
        else:
            found_ch, sizes = 1, set()
            for f in self._images:
                h, w, c = _file_layout(f)
                found_ch = max(found_ch, c)
                sizes.add((h, w))
            found = sorted(sizes)
        return (ch or found_ch), ([(size, size)] if size and found else found)

    def _decode(self, i: int) -> np.ndarray:
        img = self._images[i]
        if isinstance(img, (str, Path)) and medical_kind(img):
            return read_medical(img, **self.read_options)
        if isinstance(img, (str, Path)):
            from PIL import Image

            try:
                with Image.open(img) as im:
                    mode = "L" if self.channels == 1 else "RGB"
                    arr = np.asarray(im.convert(mode))
            except (OSError, ValueError) as exc:
                raise DataError(f"cannot read image {img}: {exc}. Remove or replace the file.") from exc
            return arr if arr.ndim == 3 else arr[:, :, None]
        return np.asarray(img)

    def _to_chw(self, arr: np.ndarray) -> torch.Tensor:
        arr = np.ascontiguousarray(arr)
        t = torch.from_numpy(arr if arr.flags.writeable else arr.copy())  # PIL arrays are read-only
        if t.ndim == 2:
            t = t[:, :, None]
        return match_layout(t.permute(2, 0, 1)[None], self.channels, self.image_size)[0].contiguous()

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        if self._cache is not None:
            return self._cache[i], int(self.labels[i])
        return self._to_chw(self._decode(i)), int(self.labels[i])

    def tensor(self) -> torch.Tensor:
        """All images as one uint8 tensor (N, C, H, W), decoded once and cached."""
        if self._cache is None:
            if len(self) == 0:
                raise DataError(f"{self.source}: the dataset is empty; check --split and --classes.")
            if isinstance(self._images, np.ndarray) and self._images.ndim == 4:
                t = torch.from_numpy(np.ascontiguousarray(self._images)).permute(0, 3, 1, 2)
                t = match_layout(t, self.channels, self.image_size)
                self._cache = t.contiguous()
            else:
                decoded = [self._to_chw(self._decode(i)) for i in range(len(self))]
                shapes = sorted({tuple(t.shape) for t in decoded})
                if len(shapes) > 1:  # e.g. grey DICOM next to RGB PNGs, or mixed sizes
                    raise DataError(f"{self.source}: images differ in shape (C, H, W) {shapes[:3]}; "
                                    "pass channels= (1 or 3) and image_size= to convert them.")
                self._cache = torch.stack(decoded)
        return self._cache

    def subset(self, indices: Sequence[int] | np.ndarray) -> ImageDataset:
        idx = np.asarray(indices, dtype=np.int64)
        imgs = self._images[idx] if isinstance(self._images, np.ndarray) else [self._images[i] for i in idx]
        return ImageDataset(imgs, self.labels[idx], self.class_names, self.image_size,
                            self.channels, self.source, self.read_options, self.split, self.labelled)

    def select_classes(self, names: Sequence[str]) -> ImageDataset:
        """Keep only ``names`` (in that order); labels are renumbered 0..k-1."""
        idx = [_class_index(n, self.class_names, self.source) for n in names]
        keep = np.isin(self.labels, idx)
        sub = self.subset(np.nonzero(keep)[0])
        remap = {old: new for new, old in enumerate(idx)}
        sub.labels = np.array([remap[v] for v in sub.labels], dtype=np.int64)
        sub.class_names = [self.class_names[i] for i in idx]
        return sub

    def __repr__(self) -> str:
        return f"ImageDataset({self.source}, n={len(self)}, classes={self.class_counts()})"


GREY_MODES = {"1", "L", "LA", "I", "F"}


def _file_layout(path: str | Path) -> tuple[int, int, int]:
    """(height, width, channels) of an image file from its header (a palette counts as grey
    when every palette entry is grey)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            mode, (w, h) = im.mode, im.size
            grey = mode in GREY_MODES or mode.startswith("I;")
            if mode == "P":
                pal = im.getpalette() or []
                grey = all(pal[i] == pal[i + 1] == pal[i + 2] for i in range(0, len(pal) - 2, 3))
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read image {path}: {exc}. Remove or replace the file.") from exc
    return h, w, 1 if grey else 3


def _class_index(name: str, names: Sequence[str], source: str) -> int:
    if name in names:
        return list(names).index(name)
    hint = did_you_mean(name, list(names))
    raise DataError(f"unknown class {name!r} in {source}.{hint} Classes there: {', '.join(names)}.")


def _check_exists(path: Path) -> None:
    if not path.exists():
        hint = f" {SHARED_DATA_HINT}" if "shared" in str(path) else ""
        raise DataError(f"data not found: {path}. Pass a .npz file, an ImageFolder directory or a .csv of path,label.{hint}")


def _normalise_npz_labels(labels: np.ndarray, class_names: list[str], source: str) -> np.ndarray:
    """Labels index class_names; a file whose labels are a global code (e.g. all 6 for its one
    class 'neutrophil') is mapped by sorted unique value when the counts agree."""
    if labels.size == 0 or (labels.min() >= 0 and labels.max() < len(class_names)):
        return labels
    uniq = np.unique(labels)
    if len(uniq) == len(class_names):
        return np.searchsorted(uniq, labels).astype(np.int64)
    raise DataError(
        f"{source}: labels {uniq[:10].tolist()} do not index the {len(class_names)} class_names; "
        "store labels as 0..K-1 in class_names order."
    )


NPZ_RESAVE = ("Re-save it with plain arrays: np.savez(path, images=<uint8 (N, H, W, C)>, labels=<ints>, "
              "class_names=np.array(names, dtype=str)).")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _open_npz(path: Path):
    # numpy reads anything that is neither a zip nor a .npy as a pickle and, refusing it, advises
    # allow_pickle=True: unsafe advice for a file from elsewhere, so it is replaced (and not chained).
    try:
        z = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc):
            raise DataError(f"{path} is not an .npz archive (numpy sees a pickle or an unknown format); "
                            f"gan-augment never unpickles data, since that can run code. {NPZ_RESAVE}") from None
        raise DataError(f"cannot read {path} as .npz ({_one_line(exc)}); the file is corrupted: copy it again.") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"cannot read {path} as .npz ({_one_line(exc)}); the file is corrupted or truncated: "
                        "copy it again.") from None
    if isinstance(z, np.ndarray):
        raise DataError(f"{path} holds one bare .npy array, not an .npz archive of named arrays. {NPZ_RESAVE}")
    return z


def _npz_array(z, key: str, path: Path) -> np.ndarray:
    try:
        return z[key]
    except ValueError as exc:
        if "pickle" in str(exc):
            raise DataError(f"{path}: the array {key!r} holds Python objects (a pickled object array); "
                            f"gan-augment never unpickles data, since that can run code. {NPZ_RESAVE}") from None
        raise DataError(f"{path}: cannot read {key!r} ({_one_line(exc)}); the file is corrupted: copy it again.") from None
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read {key!r} ({_one_line(exc)}); the file is corrupted or truncated: "
                        "copy it again.") from None


def read_npz(path: Path, image_size: int | None, channels: int | None,
             split: str | None, classes: Sequence[str] | None, load_images: bool = True) -> ImageDataset:
    z = _open_npz(path)
    with z:
        if "images" not in z.files:
            raise DataError(f"{path} has no 'images' array (it has {', '.join(z.files)}); store images as uint8 (N, H, W[, C]).")
        labels = _npz_array(z, "labels", path) if "labels" in z.files else None
        names = [str(c) for c in _npz_array(z, "class_names", path)] if "class_names" in z.files else None
        splits = _npz_array(z, "split", path).astype(str) if "split" in z.files else None
        if labels is not None:
            if labels.dtype.kind not in "iub" and not (labels.dtype.kind == "f" and np.all(labels == np.round(labels))):
                raise DataError(f"{path}: 'labels' must be integers (class indices), got {labels.dtype}; "
                                "store labels as 0..K-1 in class_names order.")
            labels = labels.astype(np.int64)
        if labels is None:
            n = _npz_array(z, "images", path).shape[0]
            labels = np.zeros(n, dtype=np.int64)
        if names is None:
            names = [str(i) for i in range(int(labels.max()) + 1 if labels.size else 1)]
        labels = _normalise_npz_labels(labels, names, str(path))
        rows = np.arange(len(labels))
        if split is not None:
            if splits is None:
                raise DataError(f"{path} has no 'split' array, so split={split!r} cannot be selected; omit --split.")
            if split not in set(splits.tolist()):
                have = sorted(set(splits.tolist()))
                raise DataError(f"{path}: no rows with split {split!r}.{did_you_mean(split, have)} "
                                f"Use one of its splits: {', '.join(have)}.")
            rows = rows[splits == split]
        images: Any
        if load_images:
            arr = _check_image_array(_npz_array(z, "images", path), str(path))
            if len(arr) != len(labels):
                raise DataError(f"{path}: {len(arr)} images but {len(labels)} labels.")
            images = arr[rows]
        else:
            images = np.empty((len(rows), 0, 0, 0), dtype=np.uint8)
    present = split if split is not None else ("+".join(sorted(set(splits.tolist()))) if splits is not None else None)
    ds = ImageDataset(images, labels[rows], names, image_size, channels, source=str(path), split=present,
                      labelled="labels" in z.files)
    return ds.select_classes(classes) if classes else ds


def _check_image_array(arr: np.ndarray, source: str) -> np.ndarray:
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4:
        raise DataError(f"{source}: images must be (N, H, W) or (N, H, W, C), got shape {arr.shape}.")
    if arr.shape[-1] not in (1, 3) and arr.shape[1] in (1, 3) and arr.shape[-1] >= MIN_SIDE:
        arr = np.moveaxis(arr, 1, -1)  # channel-first on disk
    if arr.shape[-1] not in (1, 3):
        raise DataError(f"{source}: images need 1 or 3 channels, got shape {arr.shape}; store (N, H, W, C) "
                        "or (N, C, H, W) with C = 1 or 3.")
    if min(arr.shape[1:3]) < MIN_SIDE:
        raise DataError(f"{source}: images of {arr.shape[1]}x{arr.shape[2]} pixels are too small "
                        f"(at least {MIN_SIDE}x{MIN_SIDE}); check the array's axis order.")
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.size and arr.min() >= 0 and arr.max() <= 1:
            arr = (arr * 255).round().astype(np.uint8)
        else:
            raise DataError(f"{source}: images must be uint8 0..255 (or float in [0, 1]), got {arr.dtype}.")
    return arr


def read_image_folder(path: Path, image_size, channels, classes, read_options=None) -> ImageDataset:
    class_dirs = sorted(d for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not class_dirs:
        raise DataError(f"{path} has no class sub-folders; an ImageFolder is root/<class>/<image>.png.")
    files, labels = [], []
    for i, d in enumerate(class_dirs):
        for f in sorted(d.rglob("*")):
            if not f.name.startswith(".") and (f.suffix.lower() in IMAGE_SUFFIXES or medical_kind(f)):
                files.append(str(f))
                labels.append(i)
    if not files:
        raise DataError(f"{path}: no images ({', '.join(sorted(FILE_SUFFIXES))}) in its class folders.")
    ds = ImageDataset(files, np.array(labels), [d.name for d in class_dirs], image_size, channels, str(path),
                      read_options)
    return ds.select_classes(classes) if classes else ds


def read_csv(path: Path, image_size, channels, split, classes, read_options=None) -> ImageDataset:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"path", "label"} <= set(rows[0]):
        raise DataError(f"{path} must have a header with columns 'path' and 'label' (and optionally 'split').")
    if split is not None:
        if "split" not in rows[0]:
            raise DataError(f"{path} has no 'split' column, so split={split!r} cannot be selected.")
        rows = [r for r in rows if r["split"] == split]
    names = sorted({r["label"] for r in rows})
    files = [str((path.parent / r["path"]).resolve()) for r in rows]
    missing = [f for f in files if not Path(f).is_file()]
    if missing:
        raise DataError(f"{path}: {len(missing)} listed images do not exist, e.g. {missing[0]}.")
    labels = np.array([names.index(r["label"]) for r in rows], dtype=np.int64)
    present = split if split is not None else ("+".join(sorted({r["split"] for r in rows})) if "split" in rows[0] else None)
    ds = ImageDataset(files, labels, names, image_size, channels, str(path), read_options, split=present)
    return ds.select_classes(classes) if classes else ds


def load_dataset(path: str | Path, split: str | None = None, classes: Sequence[str] | None = None,
                 image_size: int | None = None, channels: int | None = None,
                 window: Sequence[float] | None = None, slice: int | None = None) -> ImageDataset:
    """Open a .npz, ImageFolder directory or CSV (path,label[,split]) as an :class:`ImageDataset`.

    Folders and CSVs may hold DICOM/NIfTI files: ``window=(center, width)`` sets their intensity
    window and ``slice`` the slice of 3D volumes (default: the middle one); see core/medical.py.
    """
    if slice is not None and (isinstance(slice, bool) or not isinstance(slice, (int, np.integer))):
        raise ConfigError(f"slice must be an integer index along a volume's last axis, got {slice!r}.")
    read_options = {"window": check_window(window), "slice_index": slice}
    path = Path(path).expanduser()
    _check_exists(path)
    if path.is_dir():
        if split is not None and (path / split).is_dir():
            ds = read_image_folder(path / split, image_size, channels, classes, read_options)
            ds.split = split
            return ds
        return read_image_folder(path, image_size, channels, classes, read_options)
    if path.suffix == ".npz":
        return read_npz(path, image_size, channels, split, classes)
    if path.suffix == ".csv":
        return read_csv(path, image_size, channels, split, classes, read_options)
    raise DataError(f"unsupported data {path}: use a .npz, an ImageFolder directory or a .csv of path,label.")


def read_labels(path: str | Path, split: str | None = None) -> tuple[np.ndarray, list[str]]:
    """Labels and class names only: no image is decoded."""
    path = Path(path)
    _check_exists(path)
    if path.suffix == ".npz":
        ds = read_npz(path, None, None, split, None, load_images=False)
    else:
        ds = load_dataset(path, split=split)
    return ds.labels, ds.class_names


def as_dataset(data: Any, image_size: int | None = None, channels: int | None = None) -> ImageDataset:
    """Accept a dataset, a path, or (images, labels[, class_names]) arrays."""
    if isinstance(data, ImageDataset):
        size, ch = image_size or data.image_size, channels or data.channels
        if (size, ch) == (data.image_size, data.channels):
            return data
        views = data.__dict__.setdefault("_views", {})  # decode/resize once per (size, channels)
        if (size, ch) not in views:
            views[(size, ch)] = ImageDataset(data._images, data.labels, data.class_names, size, ch, data.source,
                                             data.read_options, getattr(data, "split", None),
                                             getattr(data, "labelled", True))
        return views[(size, ch)]
    if isinstance(data, (str, Path)):
        return load_dataset(data, image_size=image_size, channels=channels)
    if isinstance(data, (tuple, list)) and len(data) in (2, 3):
        images = data[0].numpy() if torch.is_tensor(data[0]) else np.asarray(data[0])
        if images.ndim == 4 and images.shape[1] in (1, 3) and images.shape[-1] not in (1, 3):
            images = np.moveaxis(images, 1, -1)
        images = _check_image_array(images, "arrays")
        labels = np.asarray(data[1].numpy() if torch.is_tensor(data[1]) else data[1], dtype=np.int64)
        names = list(data[2]) if len(data) == 3 else [str(i) for i in range(int(labels.max()) + 1 if labels.size else 1)]
        return ImageDataset(images, labels, names, image_size, channels, "arrays")
    if isinstance(data, (np.ndarray, torch.Tensor)):
        arr = data.numpy() if torch.is_tensor(data) else data
        return as_dataset((arr, np.zeros(len(arr), dtype=np.int64)), image_size, channels)
    raise DataError(
        f"cannot train on {type(data).__name__}; pass a path (.npz, folder, .csv), an "
        "ImageDataset, or (images uint8 (N,H,W,C), labels) arrays."
    )
