"""Fit one timm classifier on one arm's dataset and score it on held-out images.

Recipe: ``timm.create_model(name, pretrained=False, num_classes, in_chans)``, AdamW and a
one-cycle learning-rate schedule, cross-entropy, inputs scaled to [-1, 1].

Step policy (the same for every arm): **equal optimiser steps**. Each arm trains for
``epochs * ceil(n_real / batch_size)`` steps, where ``n_real`` is the number of REAL training
images, so an arm with added items does not get more updates, only a different mix of items per
update; its loader simply keeps cycling over its own (larger) dataset, calling ``set_epoch`` at
every new pass so SyntheticMix draws a new bank. ``real+dup`` and ``real+synthetic`` have the same
number of items, so their comparison does not depend on this rule.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from gan_augment.core.errors import ConfigError, DataError, TrainingDiverged
from gan_augment.core.layout import uint8_to_signed

STEP_POLICY = ("equal optimiser steps: every arm trains epochs * ceil(n_real / batch_size) steps, "
               "n_real = real training images; larger arms cycle over their own items")
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Recipe:
    model: str = "resnet18"
    epochs: int = 15
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.05
    precision: str = "fp32"
    num_workers: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "optimizer": "AdamW", "schedule": "OneCycleLR", "loss": "cross_entropy",
                "pretrained": False, "step_policy": STEP_POLICY}


def check_recipe(r: Recipe, device: torch.device) -> None:
    import timm

    if not timm.is_model(r.model):
        raise ConfigError(f"timm has no model {r.model!r}; see timm.list_models() (e.g. resnet18, resnet10t).")
    for name in ("epochs", "batch_size"):
        v = getattr(r, name)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ConfigError(f"{name} must be a positive integer, got {v!r}.")
    if r.batch_size < 2:
        raise ConfigError("batch_size must be at least 2 (batch norm needs two items).")
    if not (isinstance(r.lr, (int, float)) and r.lr > 0):
        raise ConfigError(f"lr must be positive, got {r.lr!r}.")
    if r.precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {r.precision!r}.")
    if r.precision == "fp16" and device.type != "cuda":
        raise ConfigError("precision='fp16' needs a CUDA device; use 'bf16' or 'fp32' on the CPU.")


def resolve_device(device: str | torch.device | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"unknown device {device!r}; use 'cpu', 'cuda' or 'cuda:N'.") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} asked for, but CUDA is not available here; use --device cpu.")
    return dev


def steps_per_epoch(n_real: int, batch_size: int) -> int:
    return max(1, math.ceil(n_real / batch_size))


def fit(dataset, recipe: Recipe, num_classes: int, in_chans: int, n_real: int, seed: int,
        device: torch.device, progress: bool = False, desc: str = "") -> torch.nn.Module:
    import timm
    from tqdm.auto import tqdm

    if len(dataset) < 2:
        raise DataError("an arm needs at least 2 training images.")
    torch.manual_seed(seed)
    model = timm.create_model(recipe.model, pretrained=False, num_classes=num_classes, in_chans=in_chans)
    model.to(device).train()
    per_epoch = steps_per_epoch(n_real, recipe.batch_size)
    total = recipe.epochs * per_epoch
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr, total_steps=total)
    dtype = PRECISIONS[recipe.precision]
    scaler = torch.amp.GradScaler("cuda", enabled=recipe.precision == "fp16")
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=min(recipe.batch_size, len(dataset)), shuffle=True,
        drop_last=len(dataset) > recipe.batch_size, num_workers=recipe.num_workers,
        generator=torch.Generator().manual_seed(seed))
    step, data_pass = 0, 0
    bar = tqdm(total=recipe.epochs, desc=desc or "epochs", unit="epoch", leave=False, disable=not progress)
    while step < total:
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(data_pass)
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), torch.as_tensor(y).to(device)
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                loss = torch.nn.functional.cross_entropy(model(x), y)
            if not torch.isfinite(loss):
                raise TrainingDiverged(f"classifier loss became {loss.item()} at step {step}; lower lr "
                                          f"(now {recipe.lr}) or use precision='fp32'.")
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            sched.step()
            step += 1
            if step % per_epoch == 0:
                bar.update(1)
            if step >= total:
                break
        data_pass += 1
    bar.close()
    return model.eval()


@torch.no_grad()
def predict(model: torch.nn.Module, images: torch.Tensor, device: torch.device, batch: int = 256) -> torch.Tensor:
    out = []
    for i in range(0, len(images), batch):
        x = uint8_to_signed(images[i:i + batch].to(device))
        out.append(model(x).argmax(1).cpu())
    return torch.cat(out)


def scores(preds: torch.Tensor, labels: np.ndarray | torch.Tensor, class_names: list[str]) -> dict[str, Any]:
    """Accuracy, balanced accuracy (mean recall over classes present in the labels, as
    scikit-learn's ``balanced_accuracy_score``), macro-F1 (over classes present in the labels or
    the predictions, as ``f1_score(average='macro')``) and per-class recall (None for a class
    with no images), from torchmetrics' confusion matrix."""
    from torchmetrics.functional.classification import multiclass_confusion_matrix

    k = len(class_names)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    cm = multiclass_confusion_matrix(preds.long(), y, num_classes=k).double()  # rows: true
    tp, support, predicted = cm.diag(), cm.sum(1), cm.sum(0)
    present = support > 0
    recall = torch.where(present, tp / support.clamp(min=1), torch.full_like(tp, float("nan")))
    f1_den = support + predicted
    seen = f1_den > 0
    f1 = 2 * tp[seen] / f1_den[seen]
    return {
        "accuracy": float(tp.sum() / cm.sum()),
        "balanced_accuracy": float(recall[present].mean()),
        "macro_f1": float(f1.mean()),
        "recall": {n: (None if math.isnan(float(r)) else float(r)) for n, r in zip(class_names, recall)},
        "n_eval": int(cm.sum()),
    }


def fit_and_evaluate(dataset, eval_images: torch.Tensor, eval_labels: np.ndarray, class_names: list[str],
                     recipe: Recipe, n_real: int, seed: int, device: torch.device,
                     progress: bool = False, desc: str = "") -> dict[str, Any]:
    """Train on ``dataset`` and score on ``eval_images``; returns scores, steps and seconds."""
    t0 = time.perf_counter()
    in_chans = int(eval_images.shape[1])
    model = fit(dataset, recipe, len(class_names), in_chans, n_real, seed, device, progress, desc)
    result = scores(predict(model, eval_images, device), eval_labels, class_names)
    result.update(steps=recipe.epochs * steps_per_epoch(n_real, recipe.batch_size),
                  seconds=round(time.perf_counter() - t0, 2))
    return result
