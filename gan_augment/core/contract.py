"""The one contract every backend meets. Everything else in the core (trainer, adapters, hub
client, CLI) talks to :class:`GenerativeAugmenter` only, never to a backend by name. Saving,
loading and pushing come from :class:`gan_augment.core.folder.HubMixin`."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch

from gan_augment.core.adoption import Adoption, adopt_data
from gan_augment.core.data import as_dataset
from gan_augment.core.errors import ConfigError, DataError
from gan_augment.core.folder import HubMixin
from gan_augment.core.layout import plan_layout
from gan_augment.core.naming import did_you_mean

#: None: fit() adopts the data's (its size, grey or RGB, its class names).
BASE_DEFAULTS: dict[str, Any] = {"image_size": None, "channels": None, "class_names": None}
#: what an image size or channel count left out of create() is until fit() adopts the data's: an
#: unfitted model samples, saves and loads as before (64 px RGB), and config.json always records
#: concrete values.
PROVISIONAL_LAYOUT: dict[str, int] = {"image_size": 64, "channels": 3}


def _check_type(owner: str, key: str, value: Any, default: Any) -> None:
    """A config value must have its default's type (ints may stand for floats), so a bad
    config.json fails here with a clear message instead of deep inside torch."""
    if default is None:
        return
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif isinstance(default, (list, tuple)):
        ok = isinstance(value, (list, tuple))
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise ConfigError(f"{owner}: config {key!r} must be {type(default).__name__} like its default "
                          f"{default!r}, got {value!r}.")


class GenerativeAugmenter(HubMixin, ABC):
    """A generative model that can be fitted on images and sampled, optionally by class.

    Subclasses set ``name`` (the registry key), ``conditional`` and ``defaults`` (their own
    config keys with default values). The config is captured from the constructor, validated,
    and travels as JSON beside the weights.
    """

    name: ClassVar[str] = ""
    conditional: ClassVar[bool] = False
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, **config: Any):
        if "name" not in type(self).__dict__:
            # Imported here: the registry imports this module. It names entry-point classes.
            from gan_augment.core.registry import ensure_named

            ensure_named(type(self))
        allowed = dict(BASE_DEFAULTS)
        for klass in reversed(type(self).__mro__):
            allowed.update(getattr(klass, "defaults", {}) or {})
        unknown = sorted(set(config) - set(allowed))
        if unknown:
            key = unknown[0]
            raise ConfigError(
                f"{type(self).__name__} got unknown config key {key!r}.{did_you_mean(key, allowed)} "
                f"Known keys: {', '.join(sorted(allowed))}."
            )
        for key, value in config.items():
            _check_type(type(self).__name__, key, value, allowed[key])
        merged = {**allowed, **config}
        self._deferred_layout = {k for k in PROVISIONAL_LAYOUT if merged[k] is None}
        merged.update({k: PROVISIONAL_LAYOUT[k] for k in self._deferred_layout})
        if merged["class_names"] is not None:
            merged["class_names"] = [str(c) for c in merged["class_names"]]
        self.config: dict[str, Any] = merged
        self._validate_base()
        try:
            json.dumps(self.config)
        except TypeError as exc:
            raise ConfigError(f"config must be JSON-serialisable: {exc}") from exc
        self.training_summary: dict[str, Any] = {}

    def _validate_base(self) -> None:
        size, ch = self.config["image_size"], self.config["channels"]
        if not isinstance(size, int) or isinstance(size, bool) or size < 8:
            raise ConfigError(f"image_size must be an integer >= 8 (or None: the data's), got {size!r}.")
        if ch not in (1, 3):
            raise ConfigError(f"channels must be 1 (grey) or 3 (RGB) (or None: the data's), got {ch!r}.")
        names = self.config["class_names"]
        if names is not None and (len(names) == 0 or len(set(names)) != len(names)):
            raise ConfigError(f"class_names must be non-empty and unique, got {names!r}.")

    # ---- what every backend knows about itself --------------------------------------------
    @property
    def deferred_layout(self) -> frozenset[str]:
        """The keys (image_size, channels) create() was not given and fit() will take from the
        data; until then they hold PROVISIONAL_LAYOUT. Empty once adopted or weights are loaded."""
        return frozenset(self._deferred_layout)

    def keep_layout(self) -> None:
        """Make the current image size and channels final (loaded weights have this shape)."""
        self._deferred_layout = set()

    @property
    def image_shape(self) -> tuple[int, int, int]:
        s = self.config["image_size"]
        return (self.config["channels"], s, s)

    @classmethod
    def image_size_alternatives(cls, size: int) -> list[int]:
        """The supported sizes nearest to ``size`` when this backend cannot make ``size``-pixel
        images, else []. The contract itself allows any size; convolutional backends do not."""
        return []

    def adopt_layout(self, data: Any) -> str:
        """Give the image size and channels create() left out the data's own (grey data, a grey
        model), check the size is one this backend makes, and return the line that says so
        (``data: 1,234 grey images 28x28 -> model 1 channel, 28 px``). Values given to create()
        are kept: the data is converted to them. fit() calls this before it trains."""
        ds = as_dataset(data)
        stored_ch, sizes = ds.stored_layout()
        asked = {k: None if k in self._deferred_layout else self.config[k] for k in PROVISIONAL_LAYOUT}
        ch, size, line = plan_layout(len(ds), stored_ch, sizes, asked["channels"], asked["image_size"],
                                     self.image_size_alternatives)
        self.config["channels"], self.config["image_size"] = ch, size
        self._validate_base()
        self.keep_layout()
        return line + self.check_labelled(ds)

    def adopt_data(self, data: Any, *, select_classes: bool = False) -> Adoption:
        """The one adoption step fit() starts with (core/adoption.py): the data's layout and
        class names where create() left them out, the data converted to the model, and the lines
        that say so (``data: ...`` first). ClassWise passes ``select_classes=True``."""
        return adopt_data(self, data, select_classes=select_classes)

    def adopt_class_names(self, names: list[str]) -> None:
        """Take ``names`` as the model's classes (fit() does, when create() was given none).
        A backend whose parts depend on the class count rebuilds them here."""
        self.config["class_names"] = [str(c) for c in names]
        self._validate_base()

    def check_labelled(self, data: Any) -> str:
        """Refuse data without labels for a conditional backend (it would learn one class named
        "0"); for an unconditional one, return the note the run's first line carries."""
        if getattr(data, "labelled", True):
            return ""
        if self.conditional:
            raise DataError(f"{data.source} has no 'labels' array, and {self.name} is conditional (it learns "
                            f"each class from its labels); add labels and class_names to the file "
                            "(np.savez(path, images=..., labels=<0..K-1>, class_names=[...])) or train an "
                            "unconditional backend such as dcgan or wgan-gp.")
        return "; no labels: one class"

    @property
    def class_names(self) -> list[str]:
        return list(self.config["class_names"] or ["all"])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def class_index(self, label: int | str) -> int:
        """Map a class name or index to an index, with an error that lists the classes."""
        names = self.class_names
        if isinstance(label, str):
            if label in names:
                return names.index(label)
            raise ConfigError(f"unknown class {label!r}.{did_you_mean(label, names)} This model knows: {', '.join(names)}.")
        idx = int(label)
        if not 0 <= idx < len(names):
            raise ConfigError(
                f"class index {idx} is out of range: this model has {len(names)} classes "
                f"({', '.join(names)})."
            )
        return idx

    def resolve_labels(
        self, n: int, labels: Any, generator: torch.Generator | None = None
    ) -> torch.Tensor | None:
        """Turn ``labels`` (None, int, name, sequence or tensor) into an int64 tensor of length n."""
        if labels is None:
            if not self.conditional:
                return None
            return torch.randint(0, self.num_classes, (n,), generator=generator,
                                 device=generator.device if generator is not None else "cpu")
        if isinstance(labels, (int, str)) or (torch.is_tensor(labels) and labels.ndim == 0):
            idx = self.class_index(labels.item() if torch.is_tensor(labels) else labels)
            out = torch.full((n,), idx, dtype=torch.long)
        else:
            seq = labels.tolist() if hasattr(labels, "tolist") else list(labels)
            if len(seq) != n:
                raise ConfigError(f"got {len(seq)} labels for n={n} samples; pass one label per sample or a single label.")
            out = torch.tensor([self.class_index(v) for v in seq], dtype=torch.long)
        if not self.conditional and bool((out != 0).any()):
            raise ConfigError(
                f"backend {self.name!r} is unconditional (one class: {self.class_names[0]!r}); "
                "wrap it in gan_augment.ClassWise to sample by class."
            )
        return out if self.conditional else None

    # ---- the contract ---------------------------------------------------------------------
    @abstractmethod
    def fit(self, data: Any, **train_config: Any) -> GenerativeAugmenter:
        """Train on ``data`` (a dataset, a path, or (images, labels)); returns self."""

    @abstractmethod
    def sample(
        self, n: int, labels: Any = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Return ``n`` float32 images in [0, 1] shaped (n, C, H, W), on the CPU."""

    @abstractmethod
    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors needed to sample (generator weights and any latent statistics)."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Load tensors saved by :meth:`state_dict`; missing or unexpected keys are errors."""

    def to(self, device: str | torch.device) -> GenerativeAugmenter:
        return self

    def get_config(self) -> dict[str, Any]:
        return json.loads(json.dumps(self.config))

    def __repr__(self) -> str:
        c, h, w = self.image_shape
        return f"{type(self).__name__}(name={self.name!r}, image_shape=({c}, {h}, {w}), classes={self.class_names})"
