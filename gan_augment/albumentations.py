"""albumentations transform: replace an item's image by a synthetic image of its class.

    import gan_augment.albumentations  # registers the transform for A.from_dict
    A.Compose([GenerativeReplace("neutrophil-wgan-gp", p=0.3), A.HorizontalFlip()], seed=0)
    out = transform(image=img, label=3)

Randomness comes from albumentations' own generators (``self.py_random`` decides whether to
fire, ``self.random_generator`` seeds the model), so ``A.Compose(seed=...)`` makes it
reproducible. The model is stored by name, repo id or path and loaded lazily, so ``A.to_dict``
never holds weights and ``A.from_dict`` works in a fresh process.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

try:
    import albumentations as A
except ImportError as exc:  # pragma: no cover - albumentations is a dependency
    raise ImportError("gan_augment.albumentations needs albumentations: pip install albumentations") from exc

from gan_augment.core.contract import GenerativeAugmenter
from gan_augment.core.errors import ConfigError, DataError
from gan_augment.core.folder import from_pretrained
from gan_augment.mix.draws import check_probability, resolve_augmenter, synthesize
from gan_augment.mix.labels import acts_on, chosen_classes, class_for

SPATIAL_TARGETS = ("mask", "masks", "bboxes", "keypoints", "mask3d", "masks3d")


class GenerativeReplace(A.ImageOnlyTransform):
    """Replace the image by a synthetic image of the item's class, at the input's size, channels
    and dtype (uint8 0..255 or float 0..1, HWC or HW).

    Args:
        augmenter: a GenerativeAugmenter, or a short name / Hub repo id / folder to load lazily.
        p: probability to replace (albumentations' word for it; the MONAI transforms say ``prob``,
            as MONAI does).
        label_key: the keyword carrying the class, e.g. ``transform(image=img, label=3)``.
        model: the name/path to record when ``augmenter`` is an object (needed for to_dict).
        class_names: names of integer labels, to match classes to the model by name.
        class_map: dataset class (name or label) -> model class (name or index).
        filter: a SampleFilter (e.g. ``gan_augment.mix.filters.ClassifierAgreement``): the image is
            the first draw it accepts. It holds a classifier, so ``A.to_dict`` records only its
            description and ``A.from_dict`` asks for the filter object again.
        classes: the dataset classes to replace (names or labels; None: every class the model
            knows); images of other classes pass through unchanged.
    """

    def __init__(self, augmenter: GenerativeAugmenter | str | None = None, p: float = 0.5,
                 label_key: str = "label", model: str | None = None,
                 class_names: Sequence[str] | None = None, class_map: Mapping | None = None,
                 filter: Any = None, classes: Any = None):
        super().__init__(p=check_probability("p", p, "GenerativeReplace"))
        if classes is not None and (isinstance(classes, bool) or not isinstance(classes, (str, int, Sequence, set))):
            raise ConfigError(f"classes must be a class name or label, or a list of them, got {classes!r}.")
        self.classes = list(classes) if isinstance(classes, (list, tuple, set)) else classes
        self._chosen: set | None = None
        if isinstance(filter, str):
            raise ConfigError(f"this pipeline was saved with the filter {filter!r}, whose classifier is not "
                              "serialised; build GenerativeReplace(..., filter=ClassifierAgreement(clf)) again.")
        self.filter = filter
        self._augmenter, self.model = resolve_augmenter(augmenter, model)
        self.label_key = label_key
        self.class_names = list(class_names) if class_names is not None else None
        self.class_map = dict(class_map) if class_map else None

    @property
    def augmenter(self) -> GenerativeAugmenter:
        if self._augmenter is None:
            self._augmenter = from_pretrained(self.model)
        return self._augmenter

    @property
    def targets_as_params(self) -> list[str]:
        return ["image"]

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        present = [k for k in SPATIAL_TARGETS if data.get(k) is not None]
        if present:
            raise DataError(
                f"GenerativeReplace got {present}: a synthetic image has no masks, boxes or keypoints, "
                "so it cannot replace an image that has them. Use it in an image-only pipeline "
                "(classification), or drop those targets for this transform."
            )
        if self.label_key not in data:
            raise DataError(f"GenerativeReplace needs the item's class: call the pipeline as "
                            f"transform(image=img, {self.label_key}=label) (label_key={self.label_key!r}).")
        seed = int(self.random_generator.integers(0, 2**63 - 1))
        if self.classes is not None:
            if self._chosen is None:
                self._chosen = chosen_classes(self.classes, self.augmenter, self.class_names, self.class_map)
            if not acts_on(data[self.label_key], self._chosen, self.class_names):
                return {"model_class": None, "gen_seed": seed}
        model_class = class_for(self.augmenter, data[self.label_key], self.class_names, self.class_map)
        return {"model_class": model_class, "gen_seed": seed}

    def apply(self, img: np.ndarray, model_class: int | None = 0, gen_seed: int = 0, **params: Any) -> np.ndarray:
        if model_class is None:  # not one of the classes to replace
            return img
        if img.ndim == 2:
            channels = 1
        elif img.ndim == 3 and img.shape[2] in (1, 3):
            channels = img.shape[2]
        else:
            raise DataError(f"GenerativeReplace handles HW or HWC images with 1 or 3 channels; got {img.shape}.")
        u8 = synthesize(self.augmenter, model_class, gen_seed, channels, img.shape[:2], filter=self.filter)
        out = u8.permute(1, 2, 0).numpy()
        if img.ndim == 2:
            out = out[:, :, 0]
        if img.dtype == np.uint8:
            return np.ascontiguousarray(out)
        if np.issubdtype(img.dtype, np.floating):
            return (out.astype(np.float32) / 255.0).astype(img.dtype)
        raise DataError(f"GenerativeReplace expects uint8 or float images, got {img.dtype}.")

    def get_transform_init_args(self) -> dict[str, Any]:
        return {"model": self.model, "label_key": self.label_key, "class_names": self.class_names,
                "class_map": self.class_map, "classes": self.classes, "filter": self.filter.describe() if self.filter is not None else None}
