"""The training set of each arm, built from the same real images.

- ``real``: the real training images.
- ``real+classic``: the same, through albumentations flips, 90-degree rotations and mild colour
  jitter.
- ``real+dup``: the real images plus, per class, exactly as many extra items as the synthetic
  arm adds (SyntheticMix's plan), drawn uniformly with replacement from that class's real
  images, seeded, once per run (random over-sampling). The bar synthetic images must beat: it
  adds the same number of minority items without a generator.
- ``real+synthetic``: SyntheticMix with the chosen generator, ratio, strategy (and filter,
  replace share, synthetic epochs); a new bank of synthetic images every pass over the data
  (``refresh="epoch"``).
- ``real+classic+synthetic``: both; classic augmentation applies to synthetic items too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from gan_augment.core.contract import GenerativeAugmenter
from gan_augment.core.errors import ConfigError, DataError
from gan_augment.core.layout import uint8_to_signed
from gan_augment.mix.dataset import SyntheticMix

from .data import Images

ARMS = ("real", "real+classic", "real+dup", "real+synthetic", "real+classic+synthetic")
SYNTHETIC_ARMS = ("real+synthetic", "real+classic+synthetic")


@dataclass(frozen=True)
class Choice:
    """One candidate for the synthetic arms: which generator and how to mix it in."""

    generator: int  # index into the harness's generator list
    ratio: float | None
    strategy: Any
    filter: Any = None  # passed to SyntheticMix(filter=...) only when not None
    replace: float = 0.0  # SyntheticMix(replace=...): a share of every class served synthetic
    synthetic_epochs: int | None = None  # SyntheticMix(synthetic_epochs=...): then real items only

    def options(self) -> dict[str, Any]:
        """The SyntheticMix options that differ from their defaults (so old runs keep their keys)."""
        out: dict[str, Any] = {}
        if self.replace:
            out["replace"] = self.replace
        if self.synthetic_epochs is not None:
            out["synthetic_epochs"] = self.synthetic_epochs
        return out

    def describe(self, generator_labels: list[str]) -> dict[str, Any]:
        return {"generator": generator_labels[self.generator], "ratio": self.ratio,
                "strategy": self.strategy if isinstance(self.strategy, (str, float, int)) else repr(self.strategy),
                "filter": describe_filter(self.filter), **self.options()}


def describe_filter(f: Any) -> dict[str, Any] | None:
    """What identifies a filter in stored results: its class, its config (``get_config()`` if it
    has one, else its plain attributes) and a hash of any network's weights it holds."""
    if f is None:
        return None
    from .generators import state_sha256

    out: dict[str, Any] = {"class": f"{type(f).__module__}.{type(f).__qualname__}"}
    if callable(getattr(f, "get_config", None)):
        out["config"] = f.get_config()
        return out
    cfg, nets = {}, {}
    for k, v in sorted(vars(f).items()):
        if isinstance(v, (str, int, float, bool)) or v is None:
            cfg[k] = v
        elif isinstance(v, torch.nn.Module):
            nets[k] = state_sha256(v.state_dict())
        elif callable(getattr(v, "state_dict", None)):
            nets[k] = state_sha256(v.state_dict())
        else:
            cfg[k] = repr(v)
    out["config"] = cfg
    if nets:
        out["weights_sha256"] = nets
    return out


class ArrayImages(torch.utils.data.Dataset):
    """HWC uint8 images with ``targets``, ``class_names`` and a ``transform``, as a user's
    torchvision-style dataset would be (SyntheticMix adopts its transform for synthetic items)."""

    def __init__(self, images: Images, transform: Callable | None):
        self.images = images.images.permute(0, 2, 3, 1).contiguous().numpy()
        self.targets = images.labels.tolist()
        self.class_names = list(images.class_names)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        img = self.images[i]
        return (self.transform(img) if self.transform is not None else img), self.targets[i]


class Duplicated(torch.utils.data.Dataset):
    """``base`` followed by copies of ``base[rows]``: over-sampling by duplication."""

    def __init__(self, base: ArrayImages, rows: np.ndarray):
        self.base, self.rows = base, np.asarray(rows, dtype=np.int64)
        self.targets = base.targets + [base.targets[r] for r in self.rows]
        self.class_names = base.class_names

    def __len__(self) -> int:
        return len(self.base) + len(self.rows)

    def __getitem__(self, i: int):
        n = len(self.base)
        return self.base[i] if i < n else self.base[int(self.rows[i - n])]


def to_float(img: np.ndarray) -> torch.Tensor:
    """HWC uint8 -> CHW float in [-1, 1]; the classifier's input everywhere, test included."""
    return uint8_to_signed(torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1))


def classic_pipeline(channels: int, seed: int):
    """albumentations: flips, 90-degree rotations and mild colour jitter (brightness/contrast
    only for grey images), seeded."""
    import albumentations as A

    colour = (A.ColorJitter(brightness=0.1, contrast=0.1, saturation=0.1, hue=0.02, p=0.5) if channels == 3
              else A.RandomBrightnessContrast(brightness_limit=0.1, contrast_limit=0.1, p=0.5))
    return A.Compose([A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5), A.RandomRotate90(p=0.5), colour],
                     seed=seed)


def make_transform(classic: bool, channels: int, seed: int) -> Callable[[np.ndarray], torch.Tensor]:
    aug = classic_pipeline(channels, seed) if classic else None

    def transform(img: np.ndarray) -> torch.Tensor:
        if aug is not None:
            img = aug(image=img)["image"]
        return to_float(img)

    return transform


def synthetic_mix(base: ArrayImages, augmenter: GenerativeAugmenter, choice: Choice, seed: int):
    kwargs: dict[str, Any] = choice.options()
    if choice.filter is not None:
        kwargs["filter"] = choice.filter
    return SyntheticMix(base, augmenter, strategy=choice.strategy, ratio=choice.ratio, seed=seed,
                           refresh="epoch", return_synthetic_flag=False, **kwargs)


def planned_additions(mix) -> dict[int, int]:
    """Synthetic items per dataset label, from the SyntheticMix's own plan."""
    return {int(r.label): int(r.synthetic) for r in mix.plan.rows}


def duplicate_rows(labels: np.ndarray, additions: dict[int, int], seed: int) -> np.ndarray:
    """For each class, ``additions[class]`` rows drawn uniformly with replacement from that
    class's rows (numpy Generator seeded with ``seed``), classes in label order."""
    rng = np.random.default_rng([int(seed), 0xD0B])
    labels = np.asarray(labels)
    out = []
    for label in sorted(additions):
        n = additions[label]
        if n <= 0:
            continue
        idx = np.nonzero(labels == label)[0]
        if len(idx) == 0:
            raise DataError(f"cannot duplicate class {label}: it has no real training images.")
        out.append(rng.choice(idx, size=n, replace=True))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def build_arm(arm: str, images: Images, seed: int, augmenter: GenerativeAugmenter | None = None,
              choice: Choice | None = None) -> tuple[torch.utils.data.Dataset, dict[str, Any]]:
    """(dataset of ``arm``, info): info has ``items`` and ``added`` (extra items per class name)."""
    if arm not in ARMS:
        raise ConfigError(f"unknown arm {arm!r}; the arms are {', '.join(ARMS)}.")
    channels = int(images.images.shape[1])
    classic = "classic" in arm
    base = ArrayImages(images, make_transform(classic, channels, seed))
    added = dict.fromkeys(images.class_names, 0)
    data: torch.utils.data.Dataset = base
    if arm in ("real+dup", *SYNTHETIC_ARMS):
        if augmenter is None or choice is None:
            raise ConfigError(f"arm {arm!r} needs a generator and a choice of ratio/strategy.")
        mix = synthetic_mix(base, augmenter, choice, seed)
        plan = planned_additions(mix)
        for label, n in plan.items():
            added[images.class_names[label]] = n
        if arm == "real+dup":
            data = Duplicated(base, duplicate_rows(images.labels, plan, seed))
        else:
            data = mix
    return data, {"items": len(data), "added": added}
