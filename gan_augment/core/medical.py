"""DICOM and NIfTI files as uint8 images, read through MONAI's own readers.

One rule for every file so a folder of scans trains like a folder of PNGs:

* **reader**: ``.dcm``/``.dicom`` (or a suffix-less file with the DICOM ``DICM`` preamble) go to
  ``monai.data.PydicomReader``, ``.nii``/``.nii.gz`` to ``monai.data.NibabelReader``, both through
  ``monai.transforms.LoadImage``. PydicomReader applies RescaleSlope/RescaleIntercept itself, so
  DICOM values are in modality units (e.g. Hounsfield) before windowing.
* **orientation**: MONAI returns spatial axes as (x = column, y = row), also for PNGs. They are
  transposed back to (row, column), so a file looks as a PNG of the same pixels does. NIfTI voxel
  order is used as stored (i -> columns, j -> rows); the affine is not applied.
* **volumes**: a 3D NIfTI or multi-frame DICOM gives one 2D slice along its last spatial axis:
  ``slice_index`` (negative counts from the end), by default the middle one (``n // 2``).
  2D files ignore ``slice_index``.
* **intensity** to uint8 (:func:`to_uint8`): a ``window=(center, width)`` given by the user, else
  for DICOM the file's first WindowCenter/WindowWidth (the DICOM linear VOI function), else a
  robust min-max per image: the 0.5th..99.5th percentile range mapped to 0..255, clipped.
  MONOCHROME1 DICOM is inverted after that; 8-bit RGB DICOM without a window is kept as stored.
* **channels**: grey stays one channel (H, W, 1); RGB DICOM gives (H, W, 3).
"""

from __future__ import annotations

import functools
import importlib
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gan_augment.core.errors import ConfigError, DataError

DICOM_SUFFIXES = (".dcm", ".dicom")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
MEDICAL_SUFFIXES = DICOM_SUFFIXES + NIFTI_SUFFIXES
LOW_PERCENTILE, HIGH_PERCENTILE = 0.5, 99.5
INSTALL_HINT = "pip install gan-augment[medical]"
_PACKAGE = {"dicom": "pydicom", "nifti": "nibabel"}
_TAG = {"center": "00281050", "width": "00281051", "photometric": "00280004",
        "samples": "00280002", "frames": "00280008", "bits": "00280101"}


def medical_kind(path: str | Path) -> str | None:
    """'dicom', 'nifti' or None (an ordinary image), from the name or the DICOM preamble."""
    p = Path(path)
    name = p.name.lower()
    if name.endswith(NIFTI_SUFFIXES):
        return "nifti"
    if name.endswith(DICOM_SUFFIXES):
        return "dicom"
    if not p.suffix and p.is_file():  # DICOM exports often have no suffix (IM0001, 1.2.840...)
        try:
            with open(p, "rb") as f:
                return "dicom" if f.read(132)[128:] == b"DICM" else None
        except OSError:
            return None
    return None


def check_window(window: Any) -> tuple[float, float] | None:
    """``(center, width)`` as two floats with width >= 1, or None."""
    if window is None:
        return None
    try:
        center, width = (float(v) for v in window)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"window must be (center, width), e.g. (40, 400) for a CT soft-tissue "
                          f"window; got {window!r}.") from exc
    if not (np.isfinite(center) and np.isfinite(width)) or width < 1:
        raise ConfigError(f"window width must be a finite number >= 1, got window={window!r}.")
    return center, width


def window_to_uint8(x: np.ndarray, center: float, width: float) -> np.ndarray:
    """DICOM linear VOI window (PS3.3 C.11.2.1.2.1) to 0..255: values at or below
    ``center - 0.5 - (width - 1) / 2`` are 0, above ``center - 0.5 + (width - 1) / 2`` are 255."""
    x = np.asarray(x, dtype=np.float64)
    c, w = center - 0.5, width - 1.0
    if w <= 0:  # width 1: a threshold
        y = (x > c).astype(np.float64)
    else:
        y = np.clip((x - c) / w + 0.5, 0.0, 1.0)
    return np.rint(y * 255).astype(np.uint8)


def robust_to_uint8(x: np.ndarray, low: float = LOW_PERCENTILE,
                    high: float = HIGH_PERCENTILE) -> np.ndarray:
    """The ``low``..``high`` percentile range to 0..255, clipped: a few hot or dead pixels do not
    set the contrast. Falls back to min..max when that range is empty; a constant image is 0."""
    x = np.asarray(x, dtype=np.float64)
    lo, hi = np.percentile(x, [low, high])
    if hi <= lo:
        lo, hi = float(x.min()), float(x.max())
    if hi <= lo:
        return np.zeros(x.shape, dtype=np.uint8)
    return np.rint(np.clip((x - lo) / (hi - lo), 0.0, 1.0) * 255).astype(np.uint8)


def to_uint8(x: np.ndarray, window: Sequence[float] | None = None) -> np.ndarray:
    """Intensities to uint8: through ``window=(center, width)`` if given, else robust min-max."""
    win = check_window(window)
    return window_to_uint8(x, *win) if win else robust_to_uint8(x)


def _require(kind: str) -> None:
    package = _PACKAGE[kind]
    try:
        importlib.import_module(package)
    except ImportError as exc:
        what = "DICOM" if kind == "dicom" else "NIfTI"
        raise DataError(f"reading {what} files needs {package}, which is not installed: "
                        f"{INSTALL_HINT}") from exc


@functools.lru_cache(maxsize=1)
def _loader():
    """One LoadImage per process: building it instantiates every MONAI reader (slow, and noisy
    about optional GPU decoders this library does not use)."""
    import logging

    from monai.transforms import LoadImage

    log = logging.getLogger("monai.data.nvimgcodec_pydicom_plugin")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return LoadImage(image_only=True, ensure_channel_first=True, dtype=np.float32)
    finally:
        log.setLevel(level)


@functools.lru_cache(maxsize=2)
def _reader(kind: str):
    from monai.data import NibabelReader, PydicomReader

    # prune_metadata=False keeps the window and photometric tags; swap_ij stays MONAI's default.
    return PydicomReader(prune_metadata=False) if kind == "dicom" else NibabelReader()


def _tag(meta: dict, key: str, default: Any = None) -> Any:
    entry = meta.get(_TAG[key])
    values = entry.get("Value") if isinstance(entry, dict) else None
    return values[0] if values else default


def load_volume(path: str | Path) -> tuple[np.ndarray, dict, str]:
    """The file as float32 (C, X, Y[, Z]) in MONAI's axis order, its metadata and its kind."""
    kind = medical_kind(path)
    if kind is None:
        raise DataError(f"{path} is not a DICOM (.dcm) or NIfTI (.nii, .nii.gz) file.")
    _require(kind)
    try:
        with warnings.catch_warnings():
            # 2D files carry no patient geometry; the affine it warns about is not used here.
            warnings.filterwarnings("ignore", message=".*ImageOrientationPatient.*")
            img = _loader()(str(path), reader=_reader(kind))
    except Exception as exc:  # the readers raise many types (InvalidDicomError, ImageFileError, ...)
        what = "DICOM" if kind == "dicom" else "NIfTI"
        raise DataError(f"cannot read {path} as {what} ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''}). Remove or replace the file.") from exc
    arr = np.asarray(img.detach().cpu().numpy(), dtype=np.float32)
    meta = dict(getattr(img, "meta", {}))
    if kind == "dicom":
        frames = int(_tag(meta, "frames", 1) or 1)
        if int(_tag(meta, "samples", 1)) == 3 and frames == 1 and arr.ndim == 4 and arr.shape[-1] == 3:
            arr = np.moveaxis(arr[0], -1, 0)  # MONAI keeps RGB samples last: (1, X, Y, 3)
        elif frames > 1 and arr.ndim == 4 and arr.shape[0] == 1:
            arr = arr[0].transpose(2, 0, 1)[None]  # MONAI swaps rows and frames: (1, R, F, C)
    return arr, meta, kind


def read_medical(path: str | Path, window: Sequence[float] | None = None,
                 slice_index: int | None = None) -> np.ndarray:
    """One DICOM or NIfTI file as uint8 (H, W, C), C = 1 (grey) or 3 (RGB DICOM)."""
    win = check_window(window)
    arr, meta, kind = load_volume(path)
    if arr.ndim == 4:  # (C, X, Y, Z): one slice along the last spatial axis
        n = arr.shape[-1]
        i = n // 2 if slice_index is None else int(slice_index)
        if not -n <= i < n:
            raise DataError(f"{path}: slice {slice_index} is out of range; the volume has {n} "
                            f"slices along its last axis (0..{n - 1}).")
        arr = arr[..., i]
    if arr.ndim != 3 or arr.shape[0] not in (1, 3):
        raise DataError(f"{path}: expected a 2D image or a 3D volume with 1 or 3 channels, got an "
                        f"array of shape {tuple(arr.shape)} (channels first). Save one volume per file.")
    if win is None and kind == "dicom":
        center, width = _tag(meta, "center"), _tag(meta, "width")
        if center is not None and width is not None and float(width) >= 1:
            win = (float(center), float(width))
    rgb8 = arr.shape[0] == 3 and int(_tag(meta, "bits", 0) or 0) == 8
    if win is not None:
        out = window_to_uint8(arr, *win)
    elif rgb8 and kind == "dicom":
        out = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    else:
        out = robust_to_uint8(arr)
    if kind == "dicom" and str(_tag(meta, "photometric", "")).upper() == "MONOCHROME1":
        out = 255 - out  # MONOCHROME1: low values are displayed white
    return np.ascontiguousarray(out.transpose(2, 1, 0))  # (C, X, Y) -> (row, column, C)
