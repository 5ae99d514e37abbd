"""``SyntheticMix``: add synthetic images of chosen classes to a dataset the user already has.

How many images per class follows imbalanced-learn's ``sampling_strategy`` words for
over-sampling (same meanings, same validation; imbalanced-learn is not imported), and ``ratio``
caps the synthetic share of every class. Images are generated in batched forward passes into
a bank that is a pure function of ``(seed, epoch, class, chunk)``, so every DataLoader worker,
and every run, builds the same bank without talking to the others."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Mapping, Sequence
from numbers import Real
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gan_augment.core.contract import GenerativeAugmenter
from gan_augment.core.errors import ConfigError, DataError
from gan_augment.core.layout import fit_images
from gan_augment.mix.draws import chunk_seed
from gan_augment.mix.filters import SampleFilter, draw_accepted
from gan_augment.mix.forms import ImageForm, _convert_label, loader_transposes
from gan_augment.mix.labels import (
    dataset_class_names,
    dataset_labels,
    label_name,
    match_class,
    names_hint,
)
from gan_augment.mix.pipeline import Steps, dataset_steps, loaded_item
from gan_augment.mix.plan import ClassPlan, MixPlan
from gan_augment.mix.strategy import class_counts, ratio_cap, sampling_targets
from gan_augment.mix.swaps import (
    check_replace,
    check_synthetic_epochs,
    replace_slots,
    replaced_count,
    stand_ins,
)

IMAGE_KEYS = ("image", "img", "images", "pixel_values", "input")


class SyntheticMix(torch.utils.data.Dataset):
    """``base`` plus synthetic images of chosen classes from ``augmenter``.

    Items ``0..len(base)-1`` are ``base``'s own (``replace=`` serves a share of them as synthetic
    images of their class each epoch); after them come the synthetic items, class by
    class, in the form of ``base``'s items (PIL image, HWC or CHW array, tensor, MONAI dict with a
    MetaTensor). A transform is applied to synthetic items as to real ones: ``transform=`` (applied
    to both; ``base`` then yields raw items), or else the one ``base`` applies to its own items,
    whatever it calls it (``transform``: torchvision, timm, MONAI; ``transforms``: MONAI's MedNIST
    tutorial). A MONAI Compose that starts by loading files (``LoadImage(d)``) runs on synthetic
    images from the step after the loaders, and they are made in the loaded real images' form
    (orientation, dtype, value range, layout): a synthetic image has no file to load.

    Labels and class names are read without decoding an image (``.targets``/``.labels``,
    ``.classes``, timm's ``reader``, MONAI's list of dicts and their ``"class_name"``).

    Args:
        strategy: imbalanced-learn ``sampling_strategy`` for over-sampling: "minority",
            "not minority", "not majority", "all", "auto", a float (binary), a dict class ->
            target total (by label or class name), or a callable(labels) -> such a dict.
        ratio: cap on the synthetic share of each class, s / (real + s) <= ratio (None: no cap).
        seed: the bank is a function of (seed, epoch, class, chunk) only.
        refresh: an int k (default 2) draws new images every k epochs, as :meth:`set_epoch`
            moves on (generation costs 1/k as much); "epoch" every epoch; "fixed" never. The
            default is 2 because a new bank every epoch cost 6.0% of a timm ResNet-18 loop on a
            2-core CPU and every 2 epochs 3.1% (benchmarks/mixer_overhead.py, docs/performance.md).
        bank_batch: images per forward pass (and per bank chunk).
        return_synthetic_flag: append ``is_synthetic`` to tuples, or add it as a dict key.
        label_fn: ``label_fn(base) -> labels`` when ``base`` carries its labels nowhere above.
        class_map: dataset class (name or label) -> augmenter class (name or index), or None to
            add nothing for that class. Other classes are matched by name.
        class_names: names of ``base``'s integer labels when ``base`` does not carry them.
        image_key, label_key: keys of dict items (MONAI); image_key is guessed if None.
        verbose: print the plan.
        filter: a :class:`gan_augment.mix.filters.SampleFilter` (e.g. ClassifierAgreement): bank
            images are drawn until that many pass it, so the counts stay those of the plan.
        replace: a share p (default 0: off). Each epoch, exactly round(p * n) of every class's n
            real items (the majority's too) are served as synthetic images of that class, besides
            what the strategy adds, so that looking synthetic predicts no class (with
            strategy="minority" alone every synthetic image is of the rare class: a shortcut).
            Which items is a seeded permutation per (seed, epoch, class). ``len`` is unchanged.
        synthetic_epochs: None (default: synthetic items in every epoch) or E: from epoch E on
            (counted by :meth:`set_epoch`), only real items: no replacements, and each added item
            is a real item of its class (seeded, as even as possible), so ``len``, ``targets`` and
            the class balance stay as planned and samplers built once keep working. Synthetic
            images first, then a finish on real ones (as in decoupled classifier re-training).
    """

    def __init__(self, base, augmenter: GenerativeAugmenter, strategy: Any = "not majority",
                 ratio: float | None = 0.5, seed: int = 0, refresh: str | int = 2,
                 bank_batch: int = 256, return_synthetic_flag: bool = False,
                 label_fn: Callable | None = None, class_map: Mapping | None = None,
                 transform: Callable | None = None, target_transform: Callable | None = None,
                 class_names: Sequence[str] | None = None, image_key: str | None = None,
                 label_key: str = "label", verbose: bool = False, filter: Any = None,
                 replace: float = 0.0, synthetic_epochs: int | None = None):
        if not isinstance(augmenter, GenerativeAugmenter):
            raise ConfigError(f"augmenter must be a GenerativeAugmenter (gan_augment.create(...) or "
                              f"gan_augment.from_pretrained(...)), got {type(augmenter).__name__}.")
        if ratio is not None and (not isinstance(ratio, Real) or isinstance(ratio, bool) or not 0 <= ratio <= 1):
            raise ConfigError(f"ratio is the largest synthetic share of a class, in [0, 1]; got {ratio!r}.")
        if refresh not in ("epoch", "fixed") and not (isinstance(refresh, int) and not isinstance(refresh, bool) and refresh >= 1):
            raise ConfigError(f"refresh must be 'epoch', 'fixed' or a number of epochs >= 1, got {refresh!r}.")
        if not isinstance(bank_batch, int) or bank_batch < 1:
            raise ConfigError(f"bank_batch must be a positive integer, got {bank_batch!r}.")
        self.replace, self.synthetic_epochs = check_replace(replace), check_synthetic_epochs(synthetic_epochs)
        self.base, self.augmenter = base, augmenter
        self.seed, self.refresh, self.bank_batch = int(seed), refresh, bank_batch
        self.return_synthetic_flag = return_synthetic_flag
        self.transform, self.target_transform = transform, target_transform
        self.image_key, self.label_key = image_key, label_key
        self._labels = dataset_labels(base, label_fn, label_key)
        self.class_names_ = list(class_names) if class_names is not None else dataset_class_names(base, label_key)
        self.plan = self._make_plan(strategy, ratio, class_map)
        counts = [r.synthetic for r in self.plan.rows]
        self._offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self._class_rows = [np.flatnonzero(self._labels == r.label) for r in self.plan.rows]
        self._item_rows = np.zeros(len(self._labels), dtype=np.int64)  # each real item's plan row
        for row, idx in enumerate(self._class_rows):
            self._item_rows[idx] = row
        self._epoch = torch.zeros(1, dtype=torch.int64).share_memory_()  # seen by persistent workers
        # [set_epoch was called, items served before it was]: shared, to warn once if it never is
        self._clock = torch.zeros(2, dtype=torch.int64).share_memory_()
        self._swaps: dict[tuple[str, int], Any] = {}  # per epoch: replace slots, stand-ins
        self._bank: dict[tuple[int, int, int], torch.Tensor] = {}
        self._form: tuple | None = None
        self._templates: dict[int, dict] = {}
        self.filter = filter
        self._acceptance: dict[tuple[int, int, int], dict[str, int]] = {}
        if filter is not None:
            if not isinstance(filter, SampleFilter):
                raise ConfigError(f"filter must be a gan_augment.mix.filters.SampleFilter such as "
                                  f"ClassifierAgreement(classifier), got {type(filter).__name__}.")
            filter.check_classes([augmenter.class_names[r.model_class] for r in self.plan.rows
                                 if r.synthetic or r.replaced])
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
        stats = class_counts(self._labels)
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
            swap = replaced_count(real, self.replace)
            model_class = None
            if n > 0 or swap > 0:
                found, model_class = match_class(label, name, self.augmenter, class_map)
                if not found:
                    unmatched.append(name)
                if model_class is None:
                    n = swap = 0
            rows.append(ClassPlan(label, name, real, want, n, model_class, swap))
        if unmatched:
            hint = ""
            if self.class_names_ is None and not isinstance(next(iter(stats)), str):
                hint = " " + names_hint(list(stats), self.augmenter.class_names)
            why = (" replace= serves synthetic images of every class, so every class needs one."
                   if self.replace else "")
            raise ConfigError(
                f"the augmenter cannot make dataset classes {unmatched}: it knows "
                f"{self.augmenter.class_names}.{hint}{why} Map them with class_map={{'dataset class': "
                "'model class'} (None to add nothing), or give strategy a dict of only the classes "
                "the model knows."
            )
        return MixPlan(rows, strategy, ratio, self.replace, self.synthetic_epochs)

    # ---- size, labels, epochs ------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._labels) + int(self._offsets[-1])

    @property
    def targets(self) -> list:
        """Labels of every item (real then synthetic), so samplers can read them cheaply."""
        synth = [r.label for r in self.plan.rows for _ in range(r.synthetic)]
        return self._labels.tolist() + synth

    def is_synthetic(self, index: int) -> bool:
        """Whether item ``index`` is served as a synthetic image in the current epoch."""
        n_real = len(self._labels)
        if index < n_real:
            return self._replace_slot(index) >= 0
        return not self.synthetic_over

    @property
    def epoch(self) -> int:
        return int(self._epoch[0])

    @property
    def synthetic_over(self) -> bool:
        """True from epoch ``synthetic_epochs`` on: every item is then a real one."""
        return self.synthetic_epochs is not None and self.epoch >= self.synthetic_epochs

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch (the bank, the replaced items, the synthetic-epochs switch); shared
        with running workers. Call it at the start of every epoch."""
        self._epoch[0] = int(epoch)
        self._clock[0] = 1

    def _check_epochs_counted(self) -> None:
        """Warn once if a second pass starts while set_epoch was never called: the epoch options
        would then silently do nothing."""
        if not (self.replace or self.synthetic_epochs is not None) or int(self._clock[0]):
            return
        self._clock[1] += 1
        if int(self._clock[1]) == len(self) + 1:
            warnings.warn(
                "SyntheticMix: a second pass over the data started but set_epoch was never called, so "
                "replace= replaces the same items every pass and synthetic_epochs= never ends; call "
                "train_ds.set_epoch(epoch) at the start of every epoch.", RuntimeWarning, stacklevel=3)

    # ---- replacements and stand-ins (pure functions of seed, epoch, class) -----------------------
    def _replace_slot(self, index: int) -> int:
        """Place of real item ``index`` in its class's replacement bank this epoch, or -1."""
        if not self.replace or self.synthetic_over:
            return -1
        key = ("replace", self.epoch)
        if key not in self._swaps:
            self._swaps = {k: v for k, v in self._swaps.items() if k[1] == self.epoch}
            self._swaps[key] = replace_slots(self._class_rows, [r.replaced for r in self.plan.rows],
                                             len(self._labels), self.seed, self.epoch)
        return int(self._swaps[key][index])

    def _stand_in(self, row: int, j: int) -> int:
        """The real item that serves added item ``j`` of ``row`` once synthetic epochs are over."""
        key = ("stand-in", self.epoch)
        if key not in self._swaps:
            self._swaps = {k: v for k, v in self._swaps.items() if k[1] == self.epoch}
            self._swaps[key] = [stand_ins(idx, r.synthetic, self.seed, self.epoch, i)
                                for i, (idx, r) in enumerate(zip(self._class_rows, self.plan.rows))]
        return int(self._swaps[key][row][j])

    def _row_of(self, index: int) -> tuple[int, int]:
        """(row, place within the row) of added item ``index`` (absolute index)."""
        k = index - len(self._labels)
        row = int(np.searchsorted(self._offsets, k, side="right") - 1)
        return row, k - int(self._offsets[row])

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
            plan = self.plan.rows[row % len(self.plan.rows)]  # rows R..2R-1: the replacement banks
            start = chunk * self.bank_batch
            m = min(self.bank_batch, self._bank_size(row) - start)
            g = torch.Generator().manual_seed(chunk_seed(self.seed, epoch, row, chunk))
            with torch.inference_mode():  # no autograd bookkeeping for images nobody differentiates
                if self.filter is None:
                    x = self.augmenter.sample(m, labels=plan.model_class if self.augmenter.conditional else None,
                                              generator=g)
                else:
                    self._acceptance[key] = {}
                    x = draw_accepted(self.augmenter, plan.model_class, m, g, self.filter,
                                      batch_size=self.bank_batch, stats=self._acceptance[key])
            form = self._image_form()  # fit_images runs outside: the bank holds ordinary tensors
            self._bank[key] = fit_images(x.float().cpu(), form.channels, form.image_size)
        return self._bank[key]

    def _bank_size(self, row: int) -> int:
        """Bank row ``row`` < R holds the class's added images; row R + r its replacements."""
        n = len(self.plan.rows)
        return self.plan.rows[row].synthetic if row < n else self.plan.rows[row - n].replaced

    def acceptance(self) -> dict[str, dict[str, float]]:
        """Per class, for the current epoch's bank (built now if needed): how many images were
        drawn, how many the filter accepted, and the rate. Empty without a filter."""
        if self.filter is None:
            return {}
        self.build_bank()
        epoch, out = self._bank_epoch(), {}
        for (e, row, _), st in sorted(self._acceptance.items()):
            if e == epoch:
                c = out.setdefault(self.plan.rows[row % len(self.plan.rows)].name, {"accepted": 0, "drawn": 0})
                c["accepted"] += st["accepted"]
                c["drawn"] += st["drawn"]
        return {k: {**v, "rate": v["accepted"] / v["drawn"] if v["drawn"] else float("nan")}
                for k, v in out.items()}

    def build_bank(self) -> None:
        """Generate the whole bank of the current epoch now (e.g. in the main process before
        forking workers, or to time it); otherwise it is built lazily where it is needed. Nothing
        is built once the synthetic epochs are over."""
        if self.synthetic_over:
            return
        for row in range(2 * len(self.plan.rows)):
            for chunk in range(-(-self._bank_size(row) // self.bank_batch)):
                self._chunk(row, chunk)

    def synthetic_image(self, index: int) -> torch.Tensor:
        """The uint8 (C, H, W) bank image behind synthetic item ``index`` (absolute index): an
        added item, or a real item replaced this epoch."""
        if index < len(self._labels):
            j = self._replace_slot(index)
            if j < 0:
                raise IndexError(f"item {index} is a real item this epoch, not a synthetic one.")
            row = len(self.plan.rows) + self._real_row(index)
        else:
            row, j = self._row_of(index)
        return self._chunk(row, j // self.bank_batch)[j % self.bank_batch]

    def _real_row(self, index: int) -> int:
        return int(self._item_rows[index])

    # ---- forms ---------------------------------------------------------------------------------
    def _steps(self) -> Steps:
        """The steps items go through, looked up on every use: timm's create_loader sets
        ``dataset.transform`` on the mixer after it is built."""
        return dataset_steps(self.base, self.transform, self.target_transform)

    def _loaded(self, index: int) -> tuple[Any, Any]:
        own = self.transform is not None or self.target_transform is not None
        return loaded_item(self.base, index, self._steps(), own)

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
        """(container, ImageForm, image key or None, label example), learned from the first real
        item after the loading steps only: what a synthetic item must look like there."""
        if self._form is None:
            if len(self._labels) == 0:
                raise DataError("the base dataset is empty.")
            loaded, raw = self._loaded(0)
            loads = raw is not None
            if isinstance(loaded, Mapping):
                key = self._find_image_key(loaded)
                img, like = loaded[key], loaded.get(self.label_key)
                path = raw.get(key) if isinstance(raw, Mapping) else None
                container = "dict"
            elif isinstance(loaded, (tuple, list)) and len(loaded) >= 2:
                container, key, img, like, path = "tuple", None, loaded[0], loaded[1], raw
            else:
                container, key, img, like, path = "bare", None, loaded, None, raw
            if isinstance(img, (str, Path)):
                raise DataError(
                    f"the dataset's images are file paths ({str(img)[:60]!r}) and its transform does "
                    "not start with MONAI's LoadImage(d), so SyntheticMix cannot tell where a "
                    "synthetic image (which has no file) joins it. Start the Compose with "
                    "LoadImage(d), or give SyntheticMix a dataset of arrays."
                )
            form = ImageForm.of(img, channel_first=True if container == "dict" and not loads else None)
            if loads and isinstance(path, (str, Path)):
                form.transposed = loader_transposes(path, img, form)
            self._form = (container, form, key, like)
        return self._form

    def _template(self, row: int) -> dict:
        """A real dict item of the row's class after the loading steps, without its image: a
        synthetic dict carries the same other keys (e.g. MONAI's "class_name"), so batches collate."""
        if row not in self._templates:
            index = int(np.flatnonzero(self._labels == self.plan.rows[row].label)[0])
            loaded, _ = self._loaded(index)
            key = self._layout()[2]
            self._templates[row] = {k: v for k, v in loaded.items() if k != key}
        return copy.deepcopy(self._templates[row])

    def _synthetic_item(self, index: int) -> Any:
        """Item ``index`` made from its bank image, in the form a loaded real item has; a replaced
        real item comes out exactly as an added item of its class does."""
        container, form, ikey, like = self._layout()
        row = self._real_row(index) if index < len(self._labels) else self._row_of(index)[0]
        plan = self.plan.rows[row]
        meta = {"filename_or_obj": f"gan-augment:{self.augmenter.name}:{plan.name}:{index}"}
        img = form.make(self.synthetic_image(index), meta)
        label = _convert_label(plan.label, like) if like is not None else plan.label
        steps = self._steps()
        if container == "dict":
            item = {**self._template(row), ikey: img, self.label_key: label}
            return steps.rest(item) if steps.rest is not None else item
        img = steps.rest(img) if steps.rest is not None else img
        label = steps.target(label) if steps.target is not None else label
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
        self._check_epochs_counted()
        if index >= len(self._labels) and self.synthetic_over:
            index = self._stand_in(*self._row_of(index))
        synthetic = self.is_synthetic(index)
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
        state["_templates"] = {}
        state["_swaps"] = {}
        return state

    def __repr__(self) -> str:
        options = "".join([f", replace={self.replace}" if self.replace else "",
                           f", synthetic_epochs={self.synthetic_epochs}" if self.synthetic_epochs else ""])
        return (f"SyntheticMix(real={self.plan.n_real}, synthetic={self.plan.n_synthetic}, "
                f"augmenter={self.augmenter.name!r}, refresh={self.refresh!r}, seed={self.seed}{options})")
