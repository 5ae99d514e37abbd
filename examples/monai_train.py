"""Train a MONAI DenseNet121 on the PBC blood-cell images (8 classes, 64x64) with MONAI transforms.

An ordinary MONAI training script (CacheDataset, Compose of dictionary transforms, MONAI
DataLoader). Grey images ((N, H, W) or (N, H, W, 1) in the .npz) give a 1-channel network.
Synthetic images enter through ONE line in the Compose, marked ``# gan-augment:``:
with probability ``prob`` an item's image is replaced by a synthetic image of its class. Delete the
line and the script trains on the real images only.

    python examples/monai_train.py --model pbc-cwgan-gp --steps 2000

It reports accuracy, balanced accuracy (the mean of the per-class recalls, the figure that
matters on imbalanced data) and the recall of every class on the test split, or on a
class-stratified subset of it with ``--eval-per-class N``.

``--model`` is a gan-augment model folder, a short name or a Hub repo id. To make one:

    gan-augment train --backend cwgan-gp --data ../shared/data/pbc_bloodcell_64.npz \\
        --split train --image-size 64 --steps 5000 --out runs/pbc-cwgan
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from monai.data import CacheDataset, DataLoader
from monai.networks.nets import DenseNet121
from monai.transforms import (
    Compose,
    EnsureTyped,
    RandAdjustContrastd,
    RandFlipd,
    RandRotate90d,
    ScaleIntensityd,
)
from monai.utils import set_determinism
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_recall

from gan_augment.monai import GenerativeReplaced

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "pbc_bloodcell_64.npz"


def load_dicts(path, split):
    """MONAI-style list of dicts: channel-first uint8 image (1 channel for grey) and integer label."""
    with np.load(path, allow_pickle=False) as z:
        keep = z["split"] == split
        images = z["images"][keep]
        images = np.ascontiguousarray(images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2))
        labels = z["labels"][keep].astype(np.int64)
        names = [str(c) for c in z["class_names"]]
    return [{"image": img, "label": int(lab)} for img, lab in zip(images, labels)], names


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """--help keeps the docstring's layout and shows every option's default."""

    def _get_help_string(self, action):
        return action.help if action.default is None else super()._get_help_string(action)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("--data", default=str(DEFAULT_DATA), help="the PBC .npz")
    p.add_argument("--model", help="gan-augment model: folder, short name (e.g. pbc-cwgan-gp) or Hub repo id; "
                   "without it the script says how to get one")
    p.add_argument("--steps", type=int, default=2000, help="optimiser steps")
    p.add_argument("--batch-size", type=int, default=64, help="images per step")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    p.add_argument("--seed", type=int, default=0, help="weights, data order, augmentation, evaluation subset")
    p.add_argument("--log-every", type=int, default=50, help="print progress every N steps (and at step 1)")
    p.add_argument("--eval-per-class", type=int, default=0,
                   help="evaluate on N random test images per class (0: the whole test split)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                   help="where to train (the default is what this machine has)")
    return p.parse_args(argv)


def stratified_subset(labels, per_class, seed=0):
    """Indices of ``per_class`` random images of every class (all of a smaller class), sorted.
    A prefix of a class-sorted split would hold only the first classes."""
    labels = np.asarray(labels)
    if per_class <= 0:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    keep = [rng.choice(np.flatnonzero(labels == c), min(per_class, int((labels == c).sum())), replace=False)
            for c in np.unique(labels)]
    return np.sort(np.concatenate(keep))


def evaluate(model, loader, device, num_classes):
    """Accuracy, balanced accuracy (mean per-class recall) and per-class recall, with torchmetrics."""
    model.eval()
    preds, targets = [], []
    with torch.no_grad():
        for batch in loader:
            preds.append(model(batch["image"].to(device)).argmax(1).cpu())
            targets.append(torch.as_tensor(batch["label"]))
    model.train()
    pred, target = torch.cat(preds), torch.cat(targets)
    present = torch.bincount(target, minlength=num_classes) > 0  # classes absent from the subset
    recall = multiclass_recall(pred, target, num_classes=num_classes, average=None)
    acc = multiclass_accuracy(pred, target, num_classes=num_classes, average="micro")
    return float(acc), float(recall[present].mean()), recall.tolist(), len(target)


def main(argv=None):
    args = parse_args(argv)
    if not args.model:
        print("This script adds synthetic images from a gan-augment model; pass --model.\n"
              "Use the published one:  --model pbc-cwgan-gp   (bundled, works offline)\n"
              "or train one:  gan-augment train --backend cwgan-gp --data ../shared/data/pbc_bloodcell_64.npz "
              "--split train --image-size 64 --steps 5000 --out runs/pbc-cwgan\n"
              "then:       python examples/monai_train.py --model runs/pbc-cwgan\n"
              "(or delete the '# gan-augment:' line to train on real images only)", file=sys.stderr)
        return 2
    set_determinism(seed=args.seed)
    train_data, class_names = load_dicts(args.data, "train")
    test_data, _ = load_dicts(args.data, "test")
    test_data = [test_data[i] for i in stratified_subset([d["label"] for d in test_data], args.eval_per_class, args.seed)]
    in_channels = train_data[0]["image"].shape[0]  # from the data: 1 for grey, 3 for RGB

    train_tf = Compose([
        EnsureTyped(keys="image", dtype=torch.float32),
        ScaleIntensityd(keys="image", minv=0.0, maxv=1.0),
        GenerativeReplaced(keys="image", label_key="label", augmenter=args.model, prob=0.3, class_names=class_names),  # gan-augment: synthetic images
        RandFlipd(keys="image", prob=0.5, spatial_axis=0),
        RandRotate90d(keys="image", prob=0.5),
        RandAdjustContrastd(keys="image", prob=0.3, gamma=(0.8, 1.2)),
    ])
    test_tf = Compose([EnsureTyped(keys="image", dtype=torch.float32), ScaleIntensityd(keys="image", minv=0.0, maxv=1.0)])
    train_ds = CacheDataset(train_data, transform=train_tf, progress=False)
    test_ds = CacheDataset(test_data, transform=test_tf, progress=False)
    loader = DataLoader(train_ds, batch_size=args.batch_size, shuffle=True, drop_last=True,
                        num_workers=args.workers, persistent_workers=args.workers > 0)
    test_loader = DataLoader(test_ds, batch_size=128, num_workers=args.workers)

    model = DenseNet121(spatial_dims=2, in_channels=in_channels, out_channels=len(class_names)).to(args.device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    step, t0, synthetic = 0, time.time(), 0
    print(f"training DenseNet121 for {args.steps} steps of {args.batch_size} images on {args.device}", flush=True)
    while step < args.steps:
        for batch in loader:
            x, y = batch["image"].to(args.device), batch["label"].to(args.device)
            synthetic += int(torch.as_tensor(batch.get("is_synthetic", torch.zeros(len(y)))).sum())
            loss = loss_fn(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if step == 1 or step % args.log_every == 0 or step == args.steps:
                print(f"step {step}/{args.steps}  loss {loss.item():.4f}  synthetic so far {synthetic}  "
                      f"{step * args.batch_size / (time.time() - t0):.0f} img/s", flush=True)
            if step >= args.steps:
                break

    acc, bal, recall, n = evaluate(model, test_loader, args.device, len(class_names))
    print(f"test accuracy {acc:.4f}  balanced accuracy {bal:.4f}  on {n} test images"
          f"{f' ({args.eval_per_class} per class at most)' if args.eval_per_class else ''}")
    print("recall per class: " + "  ".join(f"{c} {r:.3f}" for c, r in zip(class_names, recall)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
