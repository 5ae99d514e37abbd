"""The offline domain CNN: a small classifier trained on the user's own images, whose penultimate
layer serves as the feature space for FID and friends when Inception weights cannot be had."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gan_augment.core.data import as_dataset
from gan_augment.core.devices import check_device
from gan_augment.core.errors import ConfigError, DataError, ModelLoadError
from gan_augment.core.json_file import read_json_file
from gan_augment.core.layout import to_float01
from gan_augment.core.serialization import (
    atomic_save_safetensors,
    atomic_write_text,
    load_strict,
    read_safetensors,
)
from gan_augment.eval.features import (
    CONFIG_NAME,
    EXTRACTOR_FORMAT_VERSION,
    WEIGHTS_NAME,
    FeatureExtractor,
)


class DomainCNN(FeatureExtractor):
    """A small classifier of the user's own classes; its global-pooled last conv block is the
    feature space (like Inception's pool3), its softmax feeds the Inception-Score analogue."""

    kind = "domain-cnn"

    def __init__(self, class_names: list[str], image_size: int = 64, channels: int = 3,
                 widths: tuple[int, ...] = (32, 64, 128, 128), name: str = "domain-cnn",
                 info: dict[str, Any] | None = None):
        super().__init__()
        if len(class_names) < 2:
            raise ConfigError(
                "a domain extractor is a classifier and needs at least 2 classes in its training "
                f"data, got {class_names!r}. Train it on the multi-class dataset (e.g. all 8 PBC classes)."
            )
        self.class_names = [str(c) for c in class_names]
        self.image_size = int(image_size)
        self.channels = int(channels)
        self.widths = tuple(int(w) for w in widths)
        self.name = name
        self.info: dict[str, Any] = dict(info or {})
        layers: list[nn.Module] = []
        cin = channels
        for w in self.widths:
            layers += [nn.Conv2d(cin, w, 3, padding=1, bias=False), nn.BatchNorm2d(w),
                       nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            cin = w
        self.body = nn.Sequential(*layers)
        self.num_features = cin
        self.dropout = nn.Dropout(0.2)
        self.head = nn.Linear(cin, len(self.class_names))

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        x = to_float01(x, self.channels, self.image_size) * 2 - 1
        return self.body(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._embed(x)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self._embed(x)))

    def _features_and_logits(self, x):
        f = self._embed(x)
        return f, self.head(self.dropout(f))

    def get_config(self) -> dict[str, Any]:
        return {
            "format_version": EXTRACTOR_FORMAT_VERSION, "kind": self.kind, "name": self.name,
            "class_names": self.class_names, "image_size": self.image_size,
            "channels": self.channels, "widths": list(self.widths),
            "feature_dim": self.num_features, "input": "uint8 0..255 or float [0, 1], resized to image_size",
            **self.info,
        }

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        for k in ("test_accuracy", "test_balanced_accuracy", "eval_split", "trained_on"):
            if k in self.info:
                out[k] = self.info[k]
        out["classes"] = self.class_names
        return out

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        atomic_save_safetensors(state, directory / WEIGHTS_NAME,
                                metadata={"format": "pt", "kind": self.kind})
        atomic_write_text(directory / CONFIG_NAME, json.dumps(self.get_config(), indent=2) + "\n")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> DomainCNN:
        directory = Path(directory)
        cfg_path = directory / CONFIG_NAME
        cfg = read_json_file(cfg_path, "a gan-augment feature extractor folder", ("kind",),
                               EXTRACTOR_FORMAT_VERSION, fix="copy the extractor folder again")
        if cfg.get("kind") != cls.kind:
            raise ModelLoadError(f"{cfg_path} describes a {cfg.get('kind')!r}, not a {cls.kind!r} feature extractor.")
        core = {"format_version", "kind", "name", "class_names", "image_size", "channels", "widths",
                "feature_dim", "input"}
        try:
            model = cls(cfg["class_names"], cfg["image_size"], cfg["channels"], tuple(cfg["widths"]),
                        name=cfg.get("name", directory.name),
                        info={k: v for k, v in cfg.items() if k not in core})
        except (KeyError, TypeError) as exc:
            raise ModelLoadError(f"{cfg_path} lacks or mangles {exc}; it was not written by gan-augment.") from exc
        load_strict(model, read_safetensors(directory / WEIGHTS_NAME), what=f"feature extractor {directory}")
        return model.eval()


def _augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Flips and right-angle turns: a cell has no up or left, so the classifier should not either."""
    n = x.shape[0]
    dev = x.device
    flip_h = torch.rand(n, generator=g, device=g.device).to(dev) < 0.5
    flip_v = torch.rand(n, generator=g, device=g.device).to(dev) < 0.5
    swap = torch.rand(n, generator=g, device=g.device).to(dev) < 0.5
    x = torch.where(flip_h.view(-1, 1, 1, 1), x.flip(3), x)
    x = torch.where(flip_v.view(-1, 1, 1, 1), x.flip(2), x)
    if x.shape[-1] == x.shape[-2]:
        x = torch.where(swap.view(-1, 1, 1, 1), x.transpose(2, 3), x)
    return x


@torch.no_grad()
def classifier_scores(model: DomainCNN, images: torch.Tensor, labels: np.ndarray) -> dict[str, Any]:
    """Accuracy, balanced accuracy and per-class recall (torchmetrics) on held-out images."""
    from torchmetrics.classification import MulticlassAccuracy

    _, logits = model.extract(images)
    k = len(model.class_names)
    target = torch.as_tensor(labels, dtype=torch.long)
    pred = logits.argmax(1)
    acc = MulticlassAccuracy(num_classes=k, average="micro")(pred, target).item()
    per = MulticlassAccuracy(num_classes=k, average="none")(pred, target)
    present = torch.bincount(target, minlength=k) > 0
    return {
        "accuracy": round(acc, 4),
        "balanced_accuracy": round(per[present].mean().item(), 4),
        "per_class_recall": {n: round(per[i].item(), 4) for i, n in enumerate(model.class_names) if present[i]},
        "n": len(target),
    }


def train_domain_extractor(dataset, out_dir: str | Path | None = None, steps: int = 1500,
                           seed: int = 0, test_dataset=None, batch_size: int = 64,
                           lr: float = 2e-3, widths: tuple[int, ...] = (32, 64, 128, 128),
                           image_size: int | None = None, name: str | None = None,
                           device: str | None = None, log_every: int = 100,
                           verbose: bool = True) -> DomainCNN:
    """Train the offline domain extractor on REAL TRAIN images only and measure it honestly.

    Test accuracy comes from ``test_dataset`` (the held-out split) when given; otherwise 10 % of
    the training images are held out (stratified) and the figure is labelled as validation.
    """
    ds = as_dataset(dataset)
    if not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"steps must be a positive integer, got {steps!r}.")
    if len(ds) < 4:
        raise DataError(f"{ds.source}: {len(ds)} images are too few to train a feature extractor.")
    present = np.unique(ds.labels)
    if len(present) < 2:
        raise DataError(
            f"{ds.source}: the training images hold one class only ({ds.class_names[present[0]]!r}); a "
            "domain extractor is a classifier and needs at least 2. Train it on the multi-class data "
            "(e.g. pbc_bloodcell_64.npz --split train), then use it on any subset."
        )
    rng = np.random.default_rng(seed)
    eval_split = "test"
    if test_dataset is not None:
        test = as_dataset(test_dataset)
        if test.class_names != ds.class_names:
            raise DataError(f"test classes {test.class_names} differ from train classes {ds.class_names}.")
        train = ds
    else:
        eval_split = "validation (10% of train, held out)"
        val_idx = []
        for c in present:
            idx = np.nonzero(ds.labels == c)[0]
            val_idx += rng.permutation(idx)[: max(1, len(idx) // 10)].tolist()
        mask = np.zeros(len(ds), dtype=bool)
        mask[val_idx] = True
        train, test = ds.subset(np.nonzero(~mask)[0]), ds.subset(np.nonzero(mask)[0])
    x_all = train.tensor()
    size = image_size or int(x_all.shape[-1])
    dev = check_device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    y_all = torch.as_tensor(train.labels, dtype=torch.long)
    t0 = time.time()
    # init and dropout draw from the global RNG: seed it, and give the caller's state back after
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(seed)
        model = DomainCNN(ds.class_names, size, int(x_all.shape[1]), widths,
                          name=name or (Path(out_dir).name if out_dir else "domain-cnn")).to(dev)
        _fit(model, x_all, y_all, train.labels, len(ds.class_names), steps, seed, batch_size, lr,
             dev, log_every, verbose)
    model.eval()
    scores = classifier_scores(model, test.tensor(), test.labels)
    counts = np.bincount(train.labels, minlength=len(ds.class_names))
    model.info.update({
        "test_accuracy": scores["accuracy"],
        "test_balanced_accuracy": scores["balanced_accuracy"],
        "test_per_class_recall": scores["per_class_recall"],
        "eval_split": eval_split,
        "n_eval": scores["n"],
        "trained_on": {"source": str(ds.source), "n_images": len(train),
                       "class_counts": {n: int(c) for n, c in zip(ds.class_names, counts)}},
        "training": {"steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed,
                     "optimizer": "AdamW, one-cycle", "augmentation": "flips, transposes",
                     "sampling": "class-balanced", "seconds": round(time.time() - t0, 1)},
    })
    if out_dir is not None:
        model.cpu().save(out_dir)
    return model


def _fit(model, x_all, y_all, labels, num_classes, steps, seed, batch_size, lr, dev, log_every, verbose):
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    # balanced sampling so the rare classes shape the feature space as much as the common ones
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    w = torch.as_tensor(1.0 / np.maximum(counts[labels], 1), dtype=torch.double)
    t0 = time.time()
    model.train()
    for step in range(1, steps + 1):
        idx = torch.multinomial(w, batch_size, replacement=True, generator=g)
        xb = _augment(x_all[idx], g).to(dev)
        yb = y_all[idx].to(dev)
        loss = F.cross_entropy(model.logits(xb), yb, label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if not math.isfinite(loss.item()):
            raise ConfigError(f"extractor training diverged at step {step} (loss {loss.item()}); lower --lr.")
        if verbose and (step % log_every == 0 or step == steps):
            print(f"extractor step {step}/{steps} loss {loss.item():.3f} ({time.time() - t0:.0f}s)", flush=True)
