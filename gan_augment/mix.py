"""``SyntheticMix``: add synthetic images of chosen classes to a dataset the user already has.

How many images per class follows imbalanced-learn's ``sampling_strategy`` words for
over-sampling (same meanings, same validation; imbalanced-learn is not imported), and ``ratio``
caps the synthetic share of every class. Images are generated in batched forward passes into
a bank that is a pure function of ``(seed, epoch, class, chunk)``, so every DataLoader worker,
and every run, builds the same bank without talking to the others.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gan_augment.errors import ConfigError, DataError
from gan_augment.interface import GenerativeAugmenter

# gan_augment/mix/filters.py is this module's submodule until mix.py becomes the mix/ package
__path__ = [str(Path(__file__).with_suffix(""))]

STRATEGY_WORDS = ("minority", "not minority", "not majority", "all", "auto")
IMAGE_KEYS = ("image", "img", "images", "pixel_values", "input")


# ---------------------------------------------------------------------------------------------
# imbalanced-learn's over-sampling semantics, re-implemented (the runtime must not need imblearn)
# ---------------------------------------------------------------------------------------------
def _class_counts(y: np.ndarray) -> dict[Any, int]:
    uniq, counts = np.unique(y, return_counts=True)
    return {k.item() if hasattr(k, "item") else k: int(c) for k, c in zip(uniq, counts)}


def _check_dict(wanted: Mapping, stats: dict[Any, int]) -> dict[Any, int]:
    missing = set(wanted) - set(stats)
    if missing:
        raise ConfigError(
            f"The {missing} target class is/are not present in the data. "
            f"Classes present: {sorted(stats)}; use those keys (or class names) in the strategy dict."
        )
    if any(n < 0 for n in wanted.values()):
        raise ConfigError(
            "The number of samples in a class cannot be negative."
            f"'sampling_strategy' contains some negative value: {dict(wanted)}"
        )
    out = {}
    for k, n in wanted.items():
        if n < stats[k]:
            raise ConfigError(
                "With over-sampling methods, the number of samples in a class should be greater "
                f"or equal to the original number of samples. Originally, there is {stats[k]} "
                f"samples and {n} samples are asked (class {k!r}). Give each class its target "
                "total (real + synthetic), not the number to add."
            )
        out[k] = int(n) - stats[k]
    return out


def sampling_targets(strategy: Any, y: Sequence | np.ndarray) -> dict[Any, int]:
    """Number of samples to ADD per class, exactly as imbalanced-learn's
    ``check_sampling_strategy(strategy, y, "over-sampling")`` returns it (sorted by class)."""
    y = np.asarray(y)
    stats = _class_counts(y)
    if len(stats) <= 1:
        raise ConfigError(
            f"The target 'y' needs to have more than 1 class. Got {len(stats)} class instead. "
            "A one-class dataset has no minority; pass strategy={class: target_total} ... only "
            "with two or more classes, or use the augmenter's sample() directly."
        )
    order = list(stats)  # sorted, as np.unique sorts; ties resolve to the first, as in imblearn
    n_major = max(stats.values())
    majority = max(order, key=stats.get)
    minority = min(order, key=stats.get)
    if isinstance(strategy, str):
        if strategy == "majority":
            raise ConfigError("'sampling_strategy'='majority' cannot be used with over-sampler. "
                              "SyntheticMix only adds images; use 'not majority' or a dict.")
        if strategy not in STRATEGY_WORDS:
            close = difflib.get_close_matches(strategy, STRATEGY_WORDS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                "When 'sampling_strategy' is a string, it needs to be one of "
                f"{STRATEGY_WORDS}. Got '{strategy}' instead.{hint}"
            )
        keep = {
            "minority": lambda k: k == minority,
            "not minority": lambda k: k != minority,
            "not majority": lambda k: k != majority,
            "auto": lambda k: k != majority,
            "all": lambda k: True,
        }[strategy]
        return {k: n_major - stats[k] for k in order if keep(k)}
    if isinstance(strategy, Mapping):
        return dict(sorted(_check_dict(strategy, stats).items()))
    if isinstance(strategy, (list, tuple)):
        raise ConfigError("'sampling_strategy' cannot be a list for samplers which are not cleaning "
                          "methods. Give a dict {class: target_total} instead.")
    if isinstance(strategy, Real) and not isinstance(strategy, bool):
        if strategy <= 0 or strategy > 1:
            raise ConfigError(
                "When 'sampling_strategy' is a float, it should be in the range (0, 1]. "
                f"Got {strategy} instead."
            )
        if len(stats) != 2:
            raise ConfigError(
                '"sampling_strategy" can be a float only when the type of target is binary. '
                "For multi-class, use a dict."
            )
        out = {k: int(n_major * strategy - stats[k]) for k in order if k != majority}
        if any(n <= 0 for n in out.values()):
            raise ConfigError(
                "The specified ratio required to remove samples from the minority class while "
                "trying to generate new samples. Please increase the ratio."
            )
        return out
    if callable(strategy):
        return dict(sorted(_check_dict(strategy(y), stats).items()))
    raise ConfigError(
        f"sampling_strategy must be one of {STRATEGY_WORDS}, a float, a dict or a callable; "
        f"got {type(strategy).__name__}."
    )


def ratio_cap(real: int, ratio: float | None) -> int | None:
    """Largest s with s / (real + s) <= ratio, in exact arithmetic on the fraction the float
    stands for (1/3 as typed, not its binary rounding); None means no cap."""
    if ratio is None or ratio >= 1:
        return None
    r = Fraction(ratio).limit_denominator(10**9)
    if r >= 1:  # a float a hair below 1 (0.9999999999999999) is 1 as typed: no cap
        return None
    return int((r * real) // (1 - r))


# ---------------------------------------------------------------------------------------------
# the plan
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClassPlan:
    label: Any  # the dataset's own label value
    name: str
    real: int
    wanted: int  # what the strategy asks to add
    synthetic: int  # what will be added (wanted, capped by ratio, 0 if class_map skips it)
    model_class: int | None  # augmenter class index that produces it

    @property
    def share(self) -> float:
        total = self.real + self.synthetic
        return self.synthetic / total if total else 0.0


class MixPlan:
    """Per class: real count, what the strategy wants, what is added. ``print(plan)`` shows it."""

    def __init__(self, rows: list[ClassPlan], strategy: Any, ratio: float | None):
        self.rows = rows
        self.strategy = strategy
        self.ratio = ratio

    @property
    def real(self) -> dict[str, int]:
        return {r.name: r.real for r in self.rows}

    @property
    def synthetic(self) -> dict[str, int]:
        return {r.name: r.synthetic for r in self.rows}

    @property
    def n_real(self) -> int:
        return sum(r.real for r in self.rows)

    @property
    def n_synthetic(self) -> int:
        return sum(r.synthetic for r in self.rows)

    def __len__(self) -> int:
        return self.n_real + self.n_synthetic

    def to_dict(self) -> dict[str, dict[str, int]]:
        return {r.name: {"real": r.real, "wanted": r.wanted, "synthetic": r.synthetic} for r in self.rows}

    def __str__(self) -> str:
        w = max([5] + [len(r.name) for r in self.rows])
        lines = [f"SyntheticMix plan (strategy={self.strategy!r}, ratio={self.ratio})",
                 f"{'class':<{w}}  {'real':>6}  {'wanted':>6}  {'synth':>6}  {'total':>6}  share"]
        for r in self.rows:
            lines.append(f"{r.name:<{w}}  {r.real:>6}  {r.wanted:>6}  {r.synthetic:>6}  "
                         f"{r.real + r.synthetic:>6}  {r.share:5.1%}")
        lines.append(f"{'all':<{w}}  {self.n_real:>6}  {'':>6}  {self.n_synthetic:>6}  {len(self):>6}")
        return "\n".join(lines)

    __repr__ = __str__


# ---------------------------------------------------------------------------------------------
# labels without decoding images
# ---------------------------------------------------------------------------------------------
def _monai_data(base) -> list | None:
    data = getattr(base, "data", None)
    if isinstance(data, Sequence) and data and isinstance(data[0], Mapping):
        return data
    return None


def dataset_labels(base, label_fn: Callable | None = None, label_key: str = "label") -> np.ndarray:
    """Labels of ``base`` from ``label_fn(base)``, ``.targets``, ``.labels``, a MONAI list of
    dicts (``base.data[i][label_key]``) or a ``torch.utils.data.Subset`` of those."""
    if label_fn is not None:
        y = label_fn(base)
    elif isinstance(base, torch.utils.data.Subset):
        inner = dataset_labels(base.dataset, None, label_key)
        y = inner[np.asarray(base.indices, dtype=np.int64)]
    elif getattr(base, "targets", None) is not None:
        y = base.targets
    elif getattr(base, "labels", None) is not None:
        y = base.labels
    elif _monai_data(base) is not None:
        data = _monai_data(base)
        if label_key not in data[0]:
            raise DataError(f"the dataset's dicts have no {label_key!r} key (keys: {sorted(data[0])}); "
                            "pass label_key=... or label_fn=lambda ds: [...].")
        y = [d[label_key] for d in data]
    else:
        raise DataError(
            f"cannot find the labels of {type(base).__name__} without decoding its images: give it a "
            "`.targets` or `.labels` attribute, use a MONAI list of dicts, or pass "
            "label_fn=lambda ds: <sequence of labels>."
        )
    if torch.is_tensor(y):
        y = y.cpu().numpy()
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]  # MedMNIST stores labels as (N, 1)
    if y.ndim != 1 or len(y) != len(base):
        raise DataError(f"labels must be one per item: got shape {y.shape} for {len(base)} items. "
                        "Multi-label targets are not supported by SyntheticMix.")
    if y.dtype.kind in "iu":
        y = y.astype(np.int64)
    elif y.dtype.kind not in "U":
        raise DataError(f"labels must be integers or strings, got dtype {y.dtype}.")
    return y


def dataset_class_names(base) -> list[str] | None:
    for attr in ("class_names", "classes"):
        names = getattr(base, attr, None)
        if isinstance(names, Sequence) and not isinstance(names, str) and names:
            return [str(n) for n in names]
    if isinstance(base, torch.utils.data.Subset):
        return dataset_class_names(base.dataset)
    return None


def label_name(label: Any, names: Sequence[str] | None) -> str:
    """A label's class name: strings are names; ints index ``names``, or are their own name."""
    if isinstance(label, str):
        return label
    if names is not None and 0 <= int(label) < len(names):
        return names[int(label)]
    return str(label)


def match_class(label: Any, name: str, augmenter: GenerativeAugmenter,
                class_map: Mapping | None) -> tuple[bool, int | None]:
    """(found, model class index) for a dataset class; class_map value None means skip it."""
    class_map = class_map or {}
    for key in (name, label):
        if key in class_map:
            target = class_map[key]
            if target is None:
                return True, None
            return True, augmenter.class_index(target)
    if name in augmenter.class_names:
        return True, augmenter.class_names.index(name)
    return False, None


# ---------------------------------------------------------------------------------------------
# synthetic images in the pipeline's own form
# ---------------------------------------------------------------------------------------------
def fit_images(x: torch.Tensor, channels: int, size: tuple[int, int]) -> torch.Tensor:
    """float [0, 1] (n, C, H, W) -> uint8 (n, channels, *size): resize and convert channels."""
    if x.shape[1] != channels:
        if channels == 1:
            w = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype).view(1, 3, 1, 1)
            x = (x * w).sum(1, keepdim=True)
        elif x.shape[1] == 1:
            x = x.expand(-1, channels, -1, -1)
        else:
            raise DataError(f"cannot turn {x.shape[1]}-channel synthetic images into {channels} channels.")
    if tuple(x.shape[2:]) != tuple(size):
        x = torch.nn.functional.interpolate(x, size=tuple(size), mode="bilinear", antialias=True,
                                            align_corners=False)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


@dataclass
class ImageForm:
    """What an image in the pipeline looks like, learned from one real item."""

    kind: str  # "pil", "numpy", "tensor"
    layout: str  # "chw", "hwc", "hw"
    channels: int
    size: tuple[int, int]
    dtype: Any
    scale: float  # value of white: 255 for uint8 / 0..255 floats, 1 for [0, 1] floats
    mode: str | None = None  # PIL mode
    meta: dict | None = None  # MetaTensor metadata of the probe (keys kept for collation)

    @classmethod
    def of(cls, img: Any, channel_first: bool | None = None) -> ImageForm:
        try:
            from PIL import Image
        except ImportError:  # pragma: no cover - pillow is a dependency
            Image = None
        if Image is not None and isinstance(img, Image.Image):
            ch = 1 if img.mode in ("L", "I", "F", "1") else 3
            return cls("pil", "hwc", ch, (img.height, img.width), np.uint8, 255.0, mode=img.mode)
        if torch.is_tensor(img):
            kind, arr, dtype = "tensor", img, img.dtype
            meta = dict(img.meta) if hasattr(img, "meta") else None
            floating = img.is_floating_point()
            top = float(img.max()) if img.numel() and floating else 0.0
        elif isinstance(img, np.ndarray):
            kind, arr, dtype, meta = "numpy", img, img.dtype, None
            floating = np.issubdtype(img.dtype, np.floating)
            top = float(img.max()) if img.size and floating else 0.0
        else:
            raise DataError(f"cannot make a synthetic image like a {type(img).__name__}: SyntheticMix "
                            "supports PIL images, numpy arrays and torch tensors (incl. MetaTensor).")
        shape = tuple(arr.shape)
        if len(shape) == 2:
            layout, ch, size = "hw", 1, shape
        elif len(shape) == 3:
            first = shape[0] in (1, 3)
            last = shape[-1] in (1, 3)
            cf = channel_first if channel_first is not None else (kind == "tensor" or not last) and first
            if cf and not first:
                raise DataError(f"expected a channel-first image, got shape {shape}.")
            layout = "chw" if cf else "hwc"
            ch, size = (shape[0], shape[1:]) if cf else (shape[-1], shape[:2])
            if ch not in (1, 3):
                raise DataError(f"images need 1 or 3 channels; got shape {shape}.")
        else:
            raise DataError(f"SyntheticMix handles 2-D images (H, W[, C]) only; got shape {shape}.")
        scale = 255.0 if (not floating or top > 1.5) else 1.0
        return cls(kind, layout, int(ch), (int(size[0]), int(size[1])), dtype, scale, meta=meta)

    def make(self, u8: torch.Tensor, meta_update: dict | None = None) -> Any:
        """One uint8 (C, H, W) image already of the right channels and size -> this form."""
        if self.kind == "pil":
            from PIL import Image

            arr = u8.permute(1, 2, 0).numpy()
            img = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr, "L" if arr.shape[2] == 1 else "RGB")
            return img.convert(self.mode) if self.mode not in ("L", "RGB") else img
        t = u8
        if self.layout == "hwc":
            t = t.permute(1, 2, 0)
        elif self.layout == "hw":
            t = t[0]
        t = t.contiguous()
        if self.kind == "numpy":
            arr = t.numpy()
            if np.issubdtype(np.dtype(self.dtype), np.floating):
                arr = arr.astype(self.dtype) * np.asarray(self.scale / 255.0, dtype=self.dtype)
            return arr.astype(self.dtype, copy=False)
        if self.dtype.is_floating_point:
            t = t.to(self.dtype) * (self.scale / 255.0)
        else:
            t = t.to(self.dtype)
        if self.meta is not None:
            from monai.data import MetaTensor

            meta = copy.deepcopy(self.meta)
            meta.update(meta_update or {})
            return MetaTensor(t, meta=meta)
        return t


def _convert_label(value: Any, like: Any) -> Any:
    if torch.is_tensor(like):
        return torch.as_tensor(value, dtype=like.dtype).reshape(like.shape)
    if isinstance(like, np.ndarray):
        return np.asarray(value, dtype=like.dtype).reshape(like.shape)
    if isinstance(like, np.generic):
        return like.dtype.type(value)
    if isinstance(like, bool):
        return bool(value)
    if isinstance(like, Integral) and not isinstance(value, str):
        return int(value)
    return value


# ---- shared by the albumentations and MONAI adapters -----------------------------------------
def resolve_augmenter(augmenter: GenerativeAugmenter | str | None, model: str | None):
    """(loaded augmenter or None, model reference string or None)."""
    if isinstance(augmenter, GenerativeAugmenter):
        return augmenter, model or getattr(augmenter, "name_or_path", None)
    if augmenter is None and model is None:
        raise ConfigError(
            "GenerativeReplace got no model. Give GenerativeReplace('short-name', 'owner/repo' or "
            "'folder') or an augmenter. A pipeline serialised with A.to_dict from a transform that held "
            "an unnamed in-memory model has model=None (weights are never pickled): save the model "
            "(aug.save_pretrained('folder')) and build the transform with model='folder'.")
    if augmenter is not None and not isinstance(augmenter, str):
        raise ConfigError(f"augmenter must be a GenerativeAugmenter or a model name/path, got "
                          f"{type(augmenter).__name__}.")
    return None, str(augmenter if augmenter is not None else model)


def class_for(augmenter: GenerativeAugmenter, label: Any, class_names: Sequence[str] | None,
              class_map: Mapping | None) -> int:
    """The augmenter class for an item's label: by name (class_names names int labels), through
    class_map, or, with neither, an int label is the augmenter's own class index."""
    if torch.is_tensor(label) or isinstance(label, np.ndarray):
        n = label.size if isinstance(label, np.ndarray) else label.numel()
        if n != 1:
            raise DataError(f"the label must be one class, got an array of shape {tuple(label.shape)}.")
        label = label.item()
    if isinstance(label, np.generic):
        label = label.item()
    if class_names is None and not class_map and not isinstance(label, str):
        return augmenter.class_index(int(label))
    name = label_name(label, class_names)
    found, idx = match_class(label, name, augmenter, class_map)
    if not found or idx is None:
        raise ConfigError(f"the model cannot make class {name!r}: it knows {augmenter.class_names}. "
                          "Pass class_map={'dataset class': 'model class'}.")
    return idx


def synthesize(augmenter: GenerativeAugmenter, model_class: int, seed: int, channels: int,
               size: tuple[int, int], filter: Any = None) -> torch.Tensor:
    """One uint8 (channels, *size) image of ``model_class`` from a generator seeded with ``seed``
    (the first one ``filter`` accepts, when given)."""
    g = torch.Generator().manual_seed(int(seed))
    if filter is not None:
        from gan_augment.mix.filters import draw_accepted

        x = draw_accepted(augmenter, model_class, 1, g, filter)
    else:
        x = augmenter.sample(1, labels=model_class if augmenter.conditional else None, generator=g)
    if not augmenter.conditional and model_class != 0:
        raise ConfigError(f"{augmenter.name!r} is unconditional and makes only {augmenter.class_names[0]!r}.")
    return fit_images(x.float().cpu(), channels, size)[0]



def chunk_seed(*parts: int) -> int:
    """A seed that depends only on ``parts`` (same in every process and on every platform)."""
    return int(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(1, np.uint64)[0] >> 1)


# ---------------------------------------------------------------------------------------------
# the dataset
# ---------------------------------------------------------------------------------------------
class SyntheticMix(torch.utils.data.Dataset):
    """``base`` plus synthetic images of chosen classes from ``augmenter``.

    Items ``0..len(base)-1`` are ``base``'s own; after them come the synthetic items, class by
    class, in the form of ``base``'s items (PIL image, HWC or CHW array, tensor, MONAI dict with a
    MetaTensor). A transform is applied to synthetic items as to real ones: ``transform=`` (applied
    to both; ``base`` then yields raw items), or else ``base.transform`` (torchvision and MONAI
    datasets), which ``base`` already applies to its own items.

    Args:
        strategy: imbalanced-learn ``sampling_strategy`` for over-sampling: "minority",
            "not minority", "not majority", "all", "auto", a float (binary), a dict class ->
            target total (by label or class name), or a callable(labels) -> such a dict.
        ratio: cap on the synthetic share of each class, s / (real + s) <= ratio (None: no cap).
        seed: the bank is a function of (seed, epoch, class, chunk) only.
        refresh: "epoch" draws new images when :meth:`set_epoch` changes the epoch; an int k every
            k epochs (generation costs 1/k as much); "fixed" never.
        bank_batch: images per forward pass (and per bank chunk).
        return_synthetic_flag: append ``is_synthetic`` to tuples, or add it as a dict key.
        label_fn: ``label_fn(base) -> labels`` when ``base`` has no ``.targets``/``.labels``.
        class_map: dataset class (name or label) -> augmenter class (name or index), or None to
            add nothing for that class. Other classes are matched by name.
        class_names: names of ``base``'s integer labels when ``base`` does not carry them.
        image_key, label_key: keys of dict items (MONAI); image_key is guessed if None.
        verbose: print the plan.
        filter: a :class:`gan_augment.mix.filters.SampleFilter` (e.g. ClassifierAgreement): bank
            images are drawn until that many pass it, so the counts stay those of the plan.
    """

    def __init__(self, base, augmenter: GenerativeAugmenter, strategy: Any = "not majority",
                 ratio: float | None = 0.5, seed: int = 0, refresh: str | int = "epoch",
                 bank_batch: int = 256, return_synthetic_flag: bool = False,
                 label_fn: Callable | None = None, class_map: Mapping | None = None,
                 transform: Callable | None = None, target_transform: Callable | None = None,
                 class_names: Sequence[str] | None = None, image_key: str | None = None,
                 label_key: str = "label", verbose: bool = False, filter: Any = None):
        if not isinstance(augmenter, GenerativeAugmenter):
            raise ConfigError(f"augmenter must be a GenerativeAugmenter (gan_augment.create(...) or "
                              f"gan_augment.from_pretrained(...)), got {type(augmenter).__name__}.")
        if ratio is not None and (not isinstance(ratio, Real) or isinstance(ratio, bool) or not 0 <= ratio <= 1):
            raise ConfigError(f"ratio is the largest synthetic share of a class, in [0, 1]; got {ratio!r}.")
        if refresh not in ("epoch", "fixed") and not (isinstance(refresh, int) and not isinstance(refresh, bool) and refresh >= 1):
            raise ConfigError(f"refresh must be 'epoch', 'fixed' or a number of epochs >= 1, got {refresh!r}.")
        if not isinstance(bank_batch, int) or bank_batch < 1:
            raise ConfigError(f"bank_batch must be a positive integer, got {bank_batch!r}.")
        self.base, self.augmenter = base, augmenter
        self.seed, self.refresh, self.bank_batch = int(seed), refresh, bank_batch
        self.return_synthetic_flag = return_synthetic_flag
        self.transform, self.target_transform = transform, target_transform
        self.image_key, self.label_key = image_key, label_key
        self._labels = dataset_labels(base, label_fn, label_key)
        self.class_names_ = list(class_names) if class_names is not None else dataset_class_names(base)
        self.plan = self._make_plan(strategy, ratio, class_map)
        counts = [r.synthetic for r in self.plan.rows]
        self._offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self._epoch = torch.zeros(1, dtype=torch.int64).share_memory_()  # seen by persistent workers
        self._bank: dict[tuple[int, int, int], torch.Tensor] = {}
        self._form: tuple | None = None
        self.filter = filter
        self._acceptance: dict[tuple[int, int, int], dict[str, int]] = {}
        if filter is not None:
            from gan_augment.mix.filters import SampleFilter

            if not isinstance(filter, SampleFilter):
                raise ConfigError(f"filter must be a gan_augment.mix.filters.SampleFilter such as "
                                  f"ClassifierAgreement(classifier), got {type(filter).__name__}.")
            filter.check_classes([augmenter.class_names[r.model_class] for r in self.plan.rows if r.synthetic])
        if verbose:
            print(self.plan)

    # ---- planning ------------------------------------------------------------------------------
    def _normalise_keys(self, strategy: Any, stats: dict) -> Any:
        """Let a dict strategy name classes by name as well as by label value."""
        if not isinstance(strategy, Mapping):
            return strategy
        by_name = {label_name(k, self.class_names_): k for k in stats}
        return {(by_name.get(k, k) if isinstance(k, str) and k not in stats else k): v
                for k, v in strategy.items()}

    def _make_plan(self, strategy, ratio, class_map) -> MixPlan:
        stats = _class_counts(self._labels)
        strat = self._normalise_keys(strategy, stats)
        if callable(strat) and not isinstance(strat, Mapping):
            fn = strat

            def strat(y):
                return self._normalise_keys(fn(y), stats)
        wanted = sampling_targets(strat, self._labels)
        rows, unmatched = [], []
        for label, real in stats.items():
            name = label_name(label, self.class_names_)
            want = int(wanted.get(label, 0))
            cap = ratio_cap(real, ratio)
            n = want if cap is None else min(want, cap)
            model_class = None
            if n > 0:
                found, model_class = match_class(label, name, self.augmenter, class_map)
                if not found:
                    unmatched.append(name)
                if model_class is None:
                    n = 0
            rows.append(ClassPlan(label, name, real, want, n, model_class))
        if unmatched:
            hint = ""
            if self.class_names_ is None and not isinstance(next(iter(stats)), str):
                hint = " The dataset carries no class names: pass class_names=[...] (in label order)."
            raise ConfigError(
                f"the augmenter cannot make dataset classes {unmatched}: it knows "
                f"{self.augmenter.class_names}.{hint} Map them with class_map={{'dataset class': "
                "'model class'} (None to add nothing), or give strategy a dict of only the classes "
                "the model knows."
            )
        return MixPlan(rows, strategy, ratio)

    # ---- size, labels, epochs ------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._labels) + int(self._offsets[-1])

    @property
    def targets(self) -> list:
        """Labels of every item (real then synthetic), so samplers can read them cheaply."""
        synth = [r.label for r in self.plan.rows for _ in range(r.synthetic)]
        return self._labels.tolist() + synth

    def is_synthetic(self, index: int) -> bool:
        return index >= len(self._labels)

    @property
    def epoch(self) -> int:
        return int(self._epoch[0])

    def set_epoch(self, epoch: int) -> None:
        """Choose the bank for ``epoch`` (refresh="epoch"); shared with running workers."""
        self._epoch[0] = int(epoch)

    def _bank_epoch(self) -> int:
        if self.refresh == "fixed":
            return 0
        return self.epoch if self.refresh == "epoch" else self.epoch // self.refresh

    # ---- the bank --------------------------------------------------------------------------------
    def _chunk(self, row: int, chunk: int) -> torch.Tensor:
        epoch = self._bank_epoch()
        key = (epoch, row, chunk)
        if key not in self._bank:
            if any(k[0] != epoch for k in self._bank):
                self._bank = {k: v for k, v in self._bank.items() if k[0] == epoch}
            plan = self.plan.rows[row]
            start = chunk * self.bank_batch
            m = min(self.bank_batch, plan.synthetic - start)
            g = torch.Generator().manual_seed(chunk_seed(self.seed, epoch, row, chunk))
            if self.filter is None:
                x = self.augmenter.sample(m, labels=plan.model_class if self.augmenter.conditional else None,
                                          generator=g)
            else:
                from gan_augment.mix.filters import draw_accepted

                self._acceptance[key] = {}
                x = draw_accepted(self.augmenter, plan.model_class, m, g, self.filter,
                                  batch_size=self.bank_batch, stats=self._acceptance[key])
            form = self._image_form()
            self._bank[key] = fit_images(x.float().cpu(), form.channels, form.size)
        return self._bank[key]

    def acceptance(self) -> dict[str, dict[str, float]]:
        """Per class, for the current epoch's bank (built now if needed): how many images were
        drawn, how many the filter accepted, and the rate. Empty without a filter."""
        if self.filter is None:
            return {}
        self.build_bank()
        epoch, out = self._bank_epoch(), {}
        for (e, row, _), st in sorted(self._acceptance.items()):
            if e == epoch:
                c = out.setdefault(self.plan.rows[row].name, {"accepted": 0, "drawn": 0})
                c["accepted"] += st["accepted"]
                c["drawn"] += st["drawn"]
        return {k: {**v, "rate": v["accepted"] / v["drawn"] if v["drawn"] else float("nan")}
                for k, v in out.items()}

    def build_bank(self) -> None:
        """Generate the whole bank of the current epoch now (e.g. in the main process before
        forking workers, or to time it); otherwise it is built lazily where it is needed."""
        for row, r in enumerate(self.plan.rows):
            for chunk in range(-(-r.synthetic // self.bank_batch)):
                self._chunk(row, chunk)

    def synthetic_image(self, index: int) -> torch.Tensor:
        """The uint8 (C, H, W) bank image behind synthetic item ``index`` (absolute index)."""
        k = index - len(self._labels)
        row = int(np.searchsorted(self._offsets, k, side="right") - 1)
        j = k - int(self._offsets[row])
        return self._chunk(row, j // self.bank_batch)[j % self.bank_batch]

    # ---- forms ---------------------------------------------------------------------------------
    def _adopted_transforms(self) -> tuple[Callable | None, Callable | None]:
        if self.transform is not None or self.target_transform is not None:
            return self.transform, self.target_transform
        return getattr(self.base, "transform", None), getattr(self.base, "target_transform", None)

    def _raw_probe(self) -> Any:
        """One real item before any transform: what a synthetic item must look like."""
        if self.transform is not None or self.target_transform is not None:
            return self.base[0]
        if getattr(self.base, "transform", None) is None and getattr(self.base, "target_transform", None) is None:
            return self.base[0]
        data = _monai_data(self.base)
        if data is not None:
            return data[0]
        raw = copy.copy(self.base)
        for attr in ("transform", "target_transform", "transforms"):
            if hasattr(raw, attr):
                setattr(raw, attr, None)
        return raw[0]

    def _find_image_key(self, item: Mapping) -> str:
        if self.image_key is not None:
            if self.image_key not in item:
                raise DataError(f"items have no key {self.image_key!r} (keys: {sorted(item)}).")
            return self.image_key
        for k in IMAGE_KEYS:
            if k in item:
                return k
        raise DataError(f"cannot tell which key of the dataset's dicts holds the image (keys: "
                        f"{sorted(item)}); pass image_key=...")

    def _image_form(self) -> ImageForm:
        return self._layout()[1]

    def _layout(self) -> tuple:
        """(container, ImageForm, image key or position, label key or position, label example)."""
        if self._form is None:
            if len(self._labels) == 0:
                raise DataError("the base dataset is empty.")
            raw = self._raw_probe()
            if isinstance(raw, Mapping):
                key = self._find_image_key(raw)
                img = raw[key]
                if isinstance(img, (str, Path)):
                    raise DataError(
                        f"the dataset's {key!r} entries are file paths that its transform loads; a "
                        "synthetic image has no file. Put gan_augment.monai.GenerativeReplaced after "
                        "LoadImaged in your Compose instead, or give SyntheticMix a dataset of arrays."
                    )
                self._form = ("dict", ImageForm.of(img, channel_first=True), key, self.label_key,
                              raw.get(self.label_key))
            elif isinstance(raw, (tuple, list)) and len(raw) >= 2:
                self._form = ("tuple", ImageForm.of(raw[0]), 0, 1, raw[1])
            else:
                self._form = ("bare", ImageForm.of(raw), None, None, None)
        return self._form

    def _synthetic_item(self, index: int) -> Any:
        container, form, ikey, _lkey, like = self._layout()
        row = int(np.searchsorted(self._offsets, index - len(self._labels), side="right") - 1)
        plan = self.plan.rows[row]
        meta = {"filename_or_obj": f"gan-augment:{self.augmenter.name}:{plan.name}:{index}"}
        img = form.make(self.synthetic_image(index), meta)
        label = _convert_label(plan.label, like) if like is not None else plan.label
        tf, ttf = self._adopted_transforms()
        if container == "dict":
            item = {ikey: img, self.label_key: label}
            return tf(item) if tf is not None else item
        img = tf(img) if tf is not None else img
        label = ttf(label) if ttf is not None else label
        return (img, label) if container == "tuple" else img

    def _real_item(self, index: int) -> Any:
        item = self.base[index]
        if self.transform is None and self.target_transform is None:
            return item
        if isinstance(item, Mapping):
            return self.transform(item) if self.transform is not None else item
        if isinstance(item, (tuple, list)):
            img, label, *rest = item
            img = self.transform(img) if self.transform is not None else img
            label = self.target_transform(label) if self.target_transform is not None else label
            return (img, label, *rest)
        return self.transform(item) if self.transform is not None else item

    def __getitem__(self, index: int) -> Any:
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for SyntheticMix of length {n}")
        synthetic = index >= len(self._labels)
        item = self._synthetic_item(index) if synthetic else self._real_item(index)
        if not self.return_synthetic_flag:
            return item
        if isinstance(item, Mapping):
            return {**item, "is_synthetic": synthetic}
        if isinstance(item, tuple):
            return (*item, synthetic)
        return item, synthetic

    # ---- processes ---------------------------------------------------------------------------
    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_bank"] = {}  # a spawned worker rebuilds what it needs (same images)
        state["_acceptance"] = {}
        return state

    def __repr__(self) -> str:
        return (f"SyntheticMix(real={self.plan.n_real}, synthetic={self.plan.n_synthetic}, "
                f"augmenter={self.augmenter.name!r}, refresh={self.refresh!r}, seed={self.seed})")
