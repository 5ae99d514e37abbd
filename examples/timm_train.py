"""Train a timm ResNet-18 from scratch on the PBC blood-cell images (8 classes, 64x64).

Any .npz in the same layout works: grey images ((N, H, W) or (N, H, W, 1)) give a 1-channel
network (``in_chans=1``), and the network's input size is the images' own.

An ordinary timm/torch training script. Synthetic minority images enter through ONE line,
marked ``# gan-augment:``; delete it and the script trains on the real images only.

    python examples/timm_train.py --model pbc-cwgan-gp --steps 2000

It reports accuracy, balanced accuracy (the mean of the per-class recalls, the figure that
matters on imbalanced data) and the recall of every class on the test split, or on a
class-stratified subset of it with ``--eval-per-class N``.

``--model`` is a gan-augment model folder, a short name or a Hub repo id. To make one:

    gan-augment train --backend cwgan-gp --data ../shared/data/pbc_bloodcell_64.npz \\
        --split train --image-size 64 --steps 5000 --out runs/pbc-cwgan
    python examples/timm_train.py --model runs/pbc-cwgan
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import timm
import timm.data
import torch
from PIL import Image
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_recall

import gan_augment

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "pbc_bloodcell_64.npz"


class CellImages(torch.utils.data.Dataset):
    """torchvision-style dataset over the .npz: PIL images, ``.targets``, ``.classes``, ``.transform``."""

    def __init__(self, path, split, transform=None):
        with np.load(path, allow_pickle=False) as z:
            keep = z["split"] == split
            images = z["images"][keep]
            self.images = images[..., 0] if images.ndim == 4 and images.shape[-1] == 1 else images  # grey: HW
            self.targets = z["labels"][keep].astype(np.int64).tolist()
            self.classes = [str(c) for c in z["class_names"]]
        self.transform = transform

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        img = Image.fromarray(self.images[i])
        return (self.transform(img) if self.transform else img), self.targets[i]


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
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (one-cycle schedule)")
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
        for x, y in loader:
            preds.append(model(x.to(device)).argmax(1).cpu())
            targets.append(y)
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
              "then:       python examples/timm_train.py --model runs/pbc-cwgan\n"
              "(or delete the '# gan-augment:' line to train on real images only)", file=sys.stderr)
        return 2
    torch.manual_seed(args.seed)
    train_ds = CellImages(args.data, "train")
    test_ds = CellImages(args.data, "test")
    size, in_chans = train_ds.images.shape[1], (1 if train_ds.images.ndim == 3 else 3)  # from the data
    mean, std = timm.data.IMAGENET_DEFAULT_MEAN, timm.data.IMAGENET_DEFAULT_STD
    if in_chans == 1:  # grey: one channel, normalised by the average of ImageNet's three
        mean, std = (sum(mean) / 3,), (sum(std) / 3,)
    train_ds.transform = timm.data.create_transform(size, is_training=True, scale=(0.8, 1.0), color_jitter=0.1,
                                                    mean=mean, std=std)
    test_ds.transform = timm.data.create_transform(size, is_training=False, crop_pct=1.0, mean=mean, std=std)
    eval_ds = torch.utils.data.Subset(test_ds, stratified_subset(test_ds.targets, args.eval_per_class, args.seed).tolist())
    print(f"data: {len(train_ds)} training images, {size}x{size}, {in_chans} channel(s)")

    train_ds = gan_augment.SyntheticMix(train_ds, gan_augment.from_pretrained(args.model), strategy="not majority", ratio=0.5, verbose=True)  # gan-augment: synthetic minority images

    loader = torch.utils.data.DataLoader(train_ds, batch_size=args.batch_size, shuffle=True, drop_last=True,
                                         num_workers=args.workers, persistent_workers=args.workers > 0)
    test_loader = torch.utils.data.DataLoader(eval_ds, batch_size=128, num_workers=args.workers)
    model = timm.create_model("resnet18", pretrained=False, num_classes=len(test_ds.classes),
                              in_chans=in_chans).to(args.device)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)

    step, epoch, t0 = 0, 0, time.time()
    print(f"training resnet18 for {args.steps} steps of {args.batch_size} images on {args.device}", flush=True)
    while step < args.steps:
        if hasattr(train_ds, "set_epoch"):  # like DistributedSampler.set_epoch: new draws per epoch
            train_ds.set_epoch(epoch)
        for x, y in loader:
            loss = loss_fn(model(x.to(args.device)), y.to(args.device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if step == 1 or step % args.log_every == 0 or step == args.steps:
                print(f"step {step}/{args.steps}  epoch {epoch}  loss {loss.item():.4f}  "
                      f"{step * args.batch_size / (time.time() - t0):.0f} img/s", flush=True)
            if step >= args.steps:
                break
        epoch += 1
    acc, bal, recall, n = evaluate(model, test_loader, args.device, len(test_ds.classes))
    print(f"test accuracy {acc:.4f}  balanced accuracy {bal:.4f}  on {n} test images"
          f"{f' ({args.eval_per_class} per class at most)' if args.eval_per_class else ''}")
    print("recall per class: " + "  ".join(f"{c} {r:.3f}" for c, r in zip(test_ds.classes, recall)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
