"""MONAI transforms: replace a channel-first image by a synthetic image of its class.

``GenerativeReplace`` (array) and ``GenerativeReplaced`` (dictionary) are MONAI
``RandomizableTransform``s: they draw only from ``self.R``, so ``set_random_state`` and
``Compose.set_random_state`` make them reproducible and ``monai.data.DataLoader`` gives each
worker its own stream; ``CacheDataset`` caches only the transforms before them. The output keeps
the input's metadata, dtype and intensity range. ``meta["gan_augment_synthetic"]`` (MetaTensor)
and, for dicts, ``data["is_synthetic"]`` say whether the image was replaced; both are set on every
item, replaced or not, so batches still collate.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

try:
    from monai.config import KeysCollection
    from monai.data import MetaTensor
    from monai.transforms import MapTransform, RandomizableTransform
    from monai.utils import TransformBackends
except ImportError as exc:  # pragma: no cover - monai is a dependency
    raise ImportError("gan_augment.monai needs MONAI: pip install monai") from exc

from gan_augment.core.contract import GenerativeAugmenter
from gan_augment.core.errors import ConfigError, DataError
from gan_augment.core.folder import from_pretrained
from gan_augment.mix.draws import check_probability, resolve_augmenter, synthesize
from gan_augment.mix.forms import ImageForm, loader_transposes
from gan_augment.mix.labels import acts_on, chosen_classes, class_for

META_KEY = "gan_augment_synthetic"


def _value_scale(img: Any, value_range: Any) -> tuple[float, float]:
    """(low, high) that white and black map to: the input's dtype convention unless given."""
    if value_range != "auto":
        lo, hi = value_range
        return float(lo), float(hi)
    floating = img.is_floating_point() if torch.is_tensor(img) else np.issubdtype(img.dtype, np.floating)
    if not floating:
        return 0.0, 255.0
    top = float(img.max()) if (img.numel() if torch.is_tensor(img) else img.size) else 1.0
    return (0.0, 255.0) if top > 1.5 else (0.0, 1.0)


class _Replacer:
    """What both transforms share: the model (loaded lazily) and the replacement itself."""

    def _setup(self, augmenter, class_names, class_map, value_range, model=None, filter=None, classes=None):
        self._augmenter, self.model = resolve_augmenter(augmenter, model)
        if classes is not None and (isinstance(classes, bool) or not isinstance(classes, (str, int, Sequence, set))):
            raise ConfigError(f"classes must be a class name or label, or a list of them, got {classes!r}.")
        self.classes = classes
        self._chosen: set | None = None
        self.filter = filter
        self.class_names = list(class_names) if class_names is not None else None
        self.class_map = dict(class_map) if class_map else None
        if value_range != "auto" and (not isinstance(value_range, Sequence) or len(value_range) != 2):
            raise ConfigError(f"value_range must be 'auto' or (low, high), got {value_range!r}.")
        self.value_range = value_range
        self._seed = 0
        self._transposed: bool | None = None  # does the loader swap rows and columns? (found once)

    @property
    def augmenter(self) -> GenerativeAugmenter:
        if self._augmenter is None:
            self._augmenter = from_pretrained(self.model)
        return self._augmenter

    def _acts_on(self, label: Any) -> bool:
        """Whether this item's class is one of ``classes`` (checked against the model once)."""
        if self.classes is None:
            return True
        if self._chosen is None:
            self._chosen = chosen_classes(self.classes, self.augmenter, self.class_names, self.class_map)
        return acts_on(label, self._chosen, self.class_names)

    def _draw_seed(self) -> None:
        self._seed = int(self.R.randint(0, 2**31 - 1))

    def _loader_transposes(self, img: Any) -> bool:
        """Whether ``img`` reached us with its file's rows and columns swapped, as MONAI's
        LoadImage hands over PNG and JPEG files: found once, from the first image that names its
        file, by the comparison SyntheticMix uses, so a synthetic image gets the same orientation
        (an orientation of its own would be a cue the classifier could learn)."""
        if self._transposed is None:
            path = img.meta.get("filename_or_obj") if isinstance(img, MetaTensor) else None
            if not path:
                return False
            self._transposed = loader_transposes(path, img, ImageForm.of(img, channel_first=True))
        return self._transposed

    def _mark(self, img: Any, synthetic: bool) -> Any:
        if isinstance(img, MetaTensor):
            img.meta[META_KEY] = synthetic
        return img

    def _replace(self, img: Any, label: Any) -> Any:
        if label is None:
            raise DataError("GenerativeReplace needs the item's class label to draw an image of that class.")
        shape = tuple(img.shape)
        if len(shape) != 3 or shape[0] not in (1, 3):
            raise DataError(
                f"GenerativeReplace expects a channel-first 2-D image (C, H, W) with 1 or 3 channels, got "
                f"shape {shape}. Put EnsureChannelFirst(d) before it; 3-D volumes are not supported."
            )
        model_class = class_for(self.augmenter, label, self.class_names, self.class_map)
        transposed = self._loader_transposes(img)
        hw = (shape[2], shape[1]) if transposed else shape[1:]
        u8 = synthesize(self.augmenter, model_class, self._seed, shape[0], hw, filter=self.filter)
        if transposed:
            u8 = u8.transpose(1, 2).contiguous()
        lo, hi = _value_scale(img, self.value_range)
        if torch.is_tensor(img):
            dtype = img.dtype
            out = u8.to(torch.float32) * ((hi - lo) / 255.0) + lo
            out = out.round().to(dtype) if not dtype.is_floating_point else out.to(dtype)
            out = out.to(img.device)
            if isinstance(img, MetaTensor):
                out = MetaTensor(out, meta=dict(img.meta), applied_operations=list(img.applied_operations))
            return self._mark(out, True)
        out = u8.numpy().astype(np.float32) * ((hi - lo) / 255.0) + lo
        if not np.issubdtype(img.dtype, np.floating):
            out = np.round(out)
        return out.astype(img.dtype)


class GenerativeReplace(_Replacer, RandomizableTransform):
    """With probability ``prob``, return a synthetic image of ``label``'s class shaped like ``img``.

    Args:
        augmenter: a GenerativeAugmenter, or a short name / Hub repo id / folder (loaded lazily).
        prob: probability to replace (MONAI's word for it, as in its Rand* transforms; the
            albumentations transform says ``p``, as albumentations does).
        classes: the dataset classes to replace (names or labels; None: every class the model
            knows). Items of other classes pass through unchanged, e.g. ``classes=["basophil"]``
            replaces only basophils.
        class_names: names of integer labels, to match classes to the model by name.
        class_map: dataset class (name or label) -> model class (name or index).
        value_range: "auto" (uint8 and 0..255 floats -> 0..255, other floats -> 0..1) or (low, high).
        filter: a SampleFilter (e.g. ``gan_augment.mix.filters.ClassifierAgreement``): the image is
            the first draw it accepts.
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, augmenter: GenerativeAugmenter | str | None = None, prob: float = 0.1,
                 class_names: Sequence[str] | None = None, class_map: Mapping | None = None,
                 value_range: Any = "auto", model: str | None = None, filter: Any = None,
                 classes: Any = None):
        RandomizableTransform.__init__(self, check_probability("prob", prob, "GenerativeReplace"))
        self._setup(augmenter, class_names, class_map, value_range, model, filter, classes)

    def randomize(self, data: Any = None) -> None:
        super().randomize(None)
        if self._do_transform:
            self._draw_seed()

    def __call__(self, img: Any, label: Any = None, randomize: bool = True) -> Any:
        if randomize:
            self.randomize()
        if not self._do_transform or (label is not None and not self._acts_on(label)):
            return self._mark(img, False)
        return self._replace(img, label)


class GenerativeReplaced(_Replacer, MapTransform, RandomizableTransform):
    """Dictionary version: replaces ``data[key]`` for each of ``keys`` using ``data[label_key]``.

    One draw per item: every key of a replaced item gets the same synthetic image (so an image and
    its copy stay paired); ``data[flag_key]`` records it (None: do not record). ``prob`` and
    ``classes`` mean what they mean for :class:`GenerativeReplace`. It replaces images, it adds
    none: to oversample a minority class, wrap the dataset in ``SyntheticMix`` instead; and put
    it only in the training Compose, not in the one the validation and test sets share.
    """

    def __init__(self, keys: KeysCollection, augmenter: GenerativeAugmenter | str | None = None,
                 label_key: str = "label", prob: float = 0.1, class_names: Sequence[str] | None = None,
                 class_map: Mapping | None = None, value_range: Any = "auto",
                 flag_key: str | None = "is_synthetic", allow_missing_keys: bool = False,
                 model: str | None = None, filter: Any = None, classes: Any = None):
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, check_probability("prob", prob, "GenerativeReplaced"))
        self._setup(augmenter, class_names, class_map, value_range, model, filter, classes)
        self.label_key = label_key
        self.flag_key = flag_key

    backend = GenerativeReplace.backend

    def randomize(self, data: Any = None) -> None:
        super().randomize(None)
        if self._do_transform:
            self._draw_seed()

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        self.randomize()
        if self._do_transform and self.label_key not in d:
            raise DataError(f"GenerativeReplaced needs the class under {self.label_key!r}; the item has "
                            f"keys {sorted(map(str, d))}. Pass label_key=...")
        replace = self._do_transform and self._acts_on(d[self.label_key])
        for key in self.key_iterator(d):
            d[key] = self._replace(d[key], d[self.label_key]) if replace else self._mark(d[key], False)
        if self.flag_key is not None:
            d[self.flag_key] = bool(replace)
        return d
