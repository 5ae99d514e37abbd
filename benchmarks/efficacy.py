"""Does GAN augmentation make a blood-cell classifier better? The leukemia study's protocol, with
seeds, intervals and paired differences.

Arms, all with the same classifier, optimiser and step budget:
  (a) real            (b) real + classic augmentation (albumentations flips, 90-degree rotations,
  colour jitter)      (c) real + synthetic via SyntheticMix      (d) real + classic + synthetic.
Settings on pbc_bloodcell_64.npz: "natural" (its own imbalance) and "hard" (basophils cut to 10% of
their training images). Each setting's generator is trained only on that setting's training
images; test images are never seen by a generator or a classifier during training.

Classifier: a small 4-block CNN trained from scratch at 64x64 (not timm's resnet18: 40 trainings
of resnet18 do not fit a 2-core CPU budget). Metrics (torchmetrics): accuracy, balanced accuracy,
macro-F1, per-class recall, macro specificity, macro one-vs-rest AUROC. Mean and 95% t-interval
over seeds per arm; paired differences (c)-(b) and (d)-(b) with their t-intervals.

    python benchmarks/efficacy.py --setting natural --generator runs/pbc-cwgan-gp --seeds 5
    python benchmarks/efficacy.py --setting hard --generator runs/hard-cwgan-gp --seeds 5
    python benchmarks/efficacy.py --report      # merge results into docs/efficacy/report.md
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

import gan_augment as ga
from gan_augment.core.serialization import atomic_write_text

ARMS = {"a": "real", "b": "real + classic", "c": "real + synthetic", "d": "real + classic + synthetic"}
OUT = Path(__file__).resolve().parents[1] / "docs" / "efficacy"
MINORITY = "basophil"


def hard_subset(ds: ga.ImageDataset, keep: float = 0.10, seed: int = 0) -> tuple[ga.ImageDataset, list[int]]:
    """All training images except that basophils are cut to ``keep`` of theirs (seeded)."""
    b = ds.class_names.index(MINORITY)
    idx_b = np.nonzero(ds.labels == b)[0]
    kept = np.sort(np.random.default_rng(seed).choice(idx_b, size=max(1, round(keep * len(idx_b))), replace=False))
    rows = np.sort(np.concatenate([np.nonzero(ds.labels != b)[0], kept]))
    return ds.subset(rows), kept.tolist()


def setting_data(path: str, setting: str):
    train = ga.load_dataset(path, split="train")
    test = ga.load_dataset(path, split="test")
    kept = None
    if setting == "hard":
        train, kept = hard_subset(train)
    return train, test, kept


class CellImages(torch.utils.data.Dataset):
    """HWC uint8 images with ``targets`` and a torchvision-style ``transform`` (as a user's would be)."""

    def __init__(self, ds: ga.ImageDataset, transform):
        self.images = ds.tensor().permute(0, 2, 3, 1).numpy()
        self.targets = ds.labels.tolist()
        self.class_names = ds.class_names
        self.transform = transform

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        img = self.images[i]
        return (self.transform(img) if self.transform is not None else img), self.targets[i]


def make_transform(classic: bool):
    import albumentations as A

    aug = A.Compose([A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5), A.RandomRotate90(p=0.5),
                     A.ColorJitter(brightness=0.1, contrast=0.1, saturation=0.1, hue=0.02, p=0.5)]) if classic else None

    def tf(img: np.ndarray) -> torch.Tensor:
        if aug is not None:
            img = aug(image=img)["image"]
        return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div(127.5).sub(1)

    return tf


class SmallCNN(nn.Module):
    """Four conv-BN-ReLU-pool blocks, global average pooling, a linear head."""

    def __init__(self, num_classes: int, width: int = 16):
        super().__init__()
        layers, c = [], 3
        for k in range(4):
            layers += [nn.Conv2d(c, width * 2**k, 3, padding=1, bias=False), nn.BatchNorm2d(width * 2**k),
                       nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            c = width * 2**k
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(c, num_classes)

    def forward(self, x):
        return self.head(self.body(x))


def train_classifier(dataset, num_classes: int, steps: int, seed: int, batch: int = 64) -> nn.Module:
    torch.manual_seed(seed)
    model = SmallCNN(num_classes)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    g = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True, drop_last=True, generator=g)
    step, epoch = 0, 0
    model.train()
    while step < steps:
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        for x, y in loader:
            loss = nn.functional.cross_entropy(model(x), torch.as_tensor(y))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if step >= steps:
                break
        epoch += 1
    return model.eval()


@torch.no_grad()
def evaluate(model: nn.Module, test: ga.ImageDataset) -> dict:
    from torchmetrics.functional.classification import (
        multiclass_accuracy,
        multiclass_auroc,
        multiclass_f1_score,
        multiclass_recall,
        multiclass_specificity,
    )

    x = test.tensor().float().div(127.5).sub(1)
    y = torch.as_tensor(test.labels)
    probs = torch.cat([model(x[i:i + 256]).softmax(1) for i in range(0, len(x), 256)])
    k = len(test.class_names)
    recall = multiclass_recall(probs, y, num_classes=k, average=None)
    return {
        "accuracy": float(multiclass_accuracy(probs, y, num_classes=k, average="micro")),
        "balanced_accuracy": float(multiclass_recall(probs, y, num_classes=k, average="macro")),
        "macro_f1": float(multiclass_f1_score(probs, y, num_classes=k, average="macro")),
        "macro_specificity": float(multiclass_specificity(probs, y, num_classes=k, average="macro")),
        "macro_auroc": float(multiclass_auroc(probs, y, num_classes=k, average="macro")),
        "recall": {n: float(r) for n, r in zip(test.class_names, recall)},
    }


def t_interval(values) -> tuple[float, float, float]:
    """Mean and 95% Student-t interval."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    m = float(v.mean())
    if len(v) < 2:
        return m, float("nan"), float("nan")
    h = float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return m, m - h, m + h


def train_generator(args) -> None:
    """Train (or resume) the setting's class-conditional generator on that setting's training
    images only. Resumable: run again with the same arguments to continue."""
    from gan_augment.training.checkpoint import CHECKPOINT_NAME

    train, _, _ = setting_data(args.data, args.setting)
    out = Path(args.generator)
    torch.manual_seed(0)
    model = ga.create("cwgan-gp", image_size=64, width=args.generator_width, class_names=train.class_names)
    ga.Trainer(model, steps=args.train_generator, batch_size=32, ema_decay=0.999, out_dir=str(out),
               resume=(out / CHECKPOINT_NAME).exists(), sample_every=250, checkpoint_every=100,
               stop_at=args.stop_at, progress=False).fit(train)


def run_setting(args) -> dict:
    train, test, kept = setting_data(args.data, args.setting)
    aug = ga.from_pretrained(args.generator) if args.generator else None
    results_path = OUT / f"results_{args.setting}.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {"runs": []}
    done = {(r["arm"], r["seed"]) for r in results["runs"]}
    results.update(setting=args.setting, steps=args.steps, ratio=args.ratio, strategy=args.strategy,
                   generator=str(args.generator), kept_basophil_rows=kept,
                   train_counts=train.class_counts(), test_counts=test.class_counts())
    arms = [a for a in args.arms if a in "ab" or aug is not None]
    for seed in range(args.seeds):
        for arm in arms:
            if (arm, seed) in done:
                continue
            base = CellImages(train, make_transform(classic=arm in "bd"))
            data = base
            if arm in "cd":
                data = ga.SyntheticMix(base, aug, strategy=args.strategy, ratio=args.ratio, seed=seed,
                                       refresh="epoch", return_synthetic_flag=False)
                if seed == 0:
                    print(data.plan)
            t0 = time.perf_counter()
            model = train_classifier(data, len(train.class_names), args.steps, seed)
            metrics = evaluate(model, test)
            rec = {"arm": arm, "seed": seed, "seconds": round(time.perf_counter() - t0, 1), **metrics}
            results["runs"].append(rec)
            atomic_write_text(results_path, json.dumps(results, indent=1))
            print(f"{args.setting} arm {arm} seed {seed}: bal.acc {metrics['balanced_accuracy']:.3f} "
                  f"{MINORITY} recall {metrics['recall'][MINORITY]:.3f} ({rec['seconds']} s)", flush=True)
    return results


HEADLINE = ["balanced_accuracy", "macro_f1", "accuracy", "macro_auroc", "macro_specificity", f"recall:{MINORITY}"]


def value(run: dict, metric: str) -> float:
    return run["recall"][metric.split(":")[1]] if metric.startswith("recall:") else run[metric]


def summarise(results: dict) -> tuple[str, dict]:
    runs = results["runs"]
    arms = [a for a in ARMS if any(r["arm"] == a for r in runs)]
    seeds = sorted({r["seed"] for r in runs})
    lines = [f"### Setting: {results['setting']}", "",
             f"Training images per class: {results['train_counts']}; test: {results['test_counts']}. "
             f"Classifier steps: {results['steps']}; synthetic strategy {results['strategy']!r}, ratio cap "
             f"{results['ratio']}; generator `{results['generator']}`; seeds: {len(seeds)}.", "",
             "| arm | " + " | ".join(HEADLINE) + " |", "|---" * (len(HEADLINE) + 1) + "|"]
    summary = {}
    for a in arms:
        cells = []
        for m in HEADLINE:
            vals = [value(r, m) for r in runs if r["arm"] == a]
            mean, lo, hi = t_interval(vals)
            summary[(a, m)] = (mean, lo, hi)
            cells.append(f"{mean:.3f} [{lo:.3f}, {hi:.3f}]")
        lines.append(f"| ({a}) {ARMS[a]} | " + " | ".join(cells) + " |")
    lines += ["", "Paired differences over the same seeds, mean [95% CI] (an interval that excludes 0 "
              "is a difference these seeds can detect):", "",
              "| comparison | " + " | ".join(HEADLINE) + " |", "|---" * (len(HEADLINE) + 1) + "|"]
    for a, ref in (("c", "b"), ("d", "b"), ("a", "b"), ("c", "a"), ("d", "a")):
        if a not in arms or ref not in arms:
            continue
        cells = []
        for m in HEADLINE:
            by_seed = {r["seed"]: value(r, m) for r in runs if r["arm"] == ref}
            diffs = [value(r, m) - by_seed[r["seed"]] for r in runs if r["arm"] == a and r["seed"] in by_seed]
            mean, lo, hi = t_interval(diffs)
            summary[(f"{a}-{ref}", m)] = (mean, lo, hi)
            cells.append(f"{mean:+.3f} [{lo:+.3f}, {hi:+.3f}]")
        lines.append(f"| ({a}) - ({ref}) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n", summary


def plot(all_summaries: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = ["balanced_accuracy", "macro_f1", f"recall:{MINORITY}"]
    fig, axes = plt.subplots(1, len(all_summaries), figsize=(6 * len(all_summaries), 3.8), squeeze=False)
    for ax, (setting, summary) in zip(axes[0], all_summaries.items()):
        arms = [a for a in ARMS if (a, metrics[0]) in summary]
        w = 0.8 / max(1, len(arms))
        for i, a in enumerate(arms):
            means = [summary[(a, m)][0] for m in metrics]
            err = [[summary[(a, m)][0] - summary[(a, m)][1] for m in metrics],
                   [summary[(a, m)][2] - summary[(a, m)][0] for m in metrics]]
            ax.bar(np.arange(len(metrics)) + i * w, means, w, yerr=err, capsize=3, label=f"({a}) {ARMS[a]}")
        ax.set_xticks(np.arange(len(metrics)) + w * (len(arms) - 1) / 2, [m.replace("_", " ") for m in metrics])
        ax.set_ylim(0, 1)
        ax.set_title(f"{setting} (mean, 95% CI)")
    axes[0][0].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report() -> None:
    parts, sums = [], {}
    for setting in ("natural", "hard"):
        p = OUT / f"results_{setting}.json"
        if p.exists():
            text, summary = summarise(json.loads(p.read_text()))
            parts.append(text)
            sums[setting] = summary
    if not sums:
        raise SystemExit("no results yet: run a setting first")
    plot(sums, OUT / "efficacy.png")
    head = (OUT / "README_head.md").read_text() if (OUT / "README_head.md").exists() else "# Augmentation efficacy\n"
    atomic_write_text(OUT / "report.md", head + "\n![efficacy](efficacy.png)\n\n" + "\n".join(parts))
    print((OUT / "report.md").read_text())


def main():
    global OUT
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "pbc_bloodcell_64.npz"))
    p.add_argument("--setting", choices=("natural", "hard"))
    p.add_argument("--generator", default=None, help="model folder (trained on this setting's train images only)")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--arms", default="abcd")
    p.add_argument("--strategy", default="not majority")
    p.add_argument("--ratio", type=float, default=0.5)
    p.add_argument("--report", action="store_true")
    p.add_argument("--out", default=None, help="folder for results_*.json, report.md and the chart")
    p.add_argument("--train-generator", type=int, default=0, metavar="STEPS",
                   help="train/resume a cwgan-gp for this setting into --generator, then stop")
    p.add_argument("--generator-width", type=int, default=32)
    p.add_argument("--stop-at", type=int, default=None)
    args = p.parse_args()
    warnings.simplefilter("ignore")
    OUT = Path(args.out) if args.out else OUT
    OUT.mkdir(parents=True, exist_ok=True)
    if args.train_generator:
        train_generator(args)
        return
    if args.setting:
        run_setting(args)
    if args.report or not args.setting:
        report()


if __name__ == "__main__":
    main()
