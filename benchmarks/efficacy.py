"""Does GAN augmentation help a blood-cell classifier more than duplicating real minority images?
The PBC settings of the efficacy harness (``gan_augment.efficacy``; see docs/efficacy.md).

Settings on pbc_bloodcell_64.npz: "natural" (its own imbalance) and "hard" (basophils cut to 10%
of their training images, seed 0: the same 19 images as the earlier report). Each setting's
generator should be trained only on that setting's training images (``--train-generator``); the
test split is never seen by a generator, and the harness reads it only after its choices are made.

    python benchmarks/efficacy.py --setting natural --generator runs/pbc-cwgan-gp --train-generator 8000
    python benchmarks/efficacy.py --setting natural --generator runs/pbc-cwgan-gp
    python benchmarks/efficacy.py --setting hard --generator runs/hard-cwgan-gp --train-generator 8000
    python benchmarks/efficacy.py --setting hard --generator runs/hard-cwgan-gp --ratio 0.2 --ratio 0.5

Each setting writes runs/, results.json, report.md and efficacy.png to ``--out``/<setting>; a rerun
resumes. (docs/efficacy/report.md holds the earlier small-CNN results and is not rewritten.)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import gan_augment as ga
from gan_augment.eval.efficacy import ARMS
from gan_augment.eval.efficacy.data import cut_rows

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "pbc_bloodcell_64.npz"
MINORITY = "basophil"


def hard_rows(train: ga.ImageDataset, keep: float = 0.10, seed: int = 0) -> np.ndarray:
    """Training rows of the hard setting: every image except that basophils are cut to ``keep``
    of theirs, ``default_rng(seed).choice(basophil rows, round(keep * n), replace=False)``."""
    n = int((train.labels == train.class_names.index(MINORITY)).sum())
    return cut_rows(train.labels, train.class_names, {MINORITY: max(1, round(keep * n))}, seed=seed)


def setting_rows(setting: str):
    return hard_rows if setting == "hard" else None


def train_generator(args) -> None:
    """Train (or resume) the setting's class-conditional generator on that setting's training
    images only. Run again with the same arguments to continue."""

    train = ga.load_dataset(args.data, split="train")
    if args.setting == "hard":
        train = train.subset(hard_rows(train))
    out = Path(args.generator)
    model = ga.create("cwgan-gp", image_size=64, width=args.generator_width, class_names=train.class_names)
    ga.Trainer(model, steps=args.train_generator, batch_size=32, ema_decay=0.999, out_dir=str(out),
               resume=(out / ga.CHECKPOINT_NAME).exists(), sample_every=250, checkpoint_every=100,
               stop_at=args.stop_at, progress=True).fit(train)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(DATA))
    p.add_argument("--setting", choices=("natural", "hard"), required=True)
    p.add_argument("--generator", required=True, help="model folder (trained on this setting's train images only)")
    p.add_argument("--model", default="resnet18")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--allow-few-seeds", action="store_true")
    p.add_argument("--ratio", type=float, action="append", help="candidates (default 0.5)")
    p.add_argument("--strategy", action="append", help="candidates (default 'not majority')")
    p.add_argument("--arm", action="append", choices=ARMS,
                   help="arms to train (default: all five); repeat")
    p.add_argument("--device", default=None)
    p.add_argument("--precision", default="fp32", choices=("auto", "fp32", "bf16", "fp16"),
                   help="fp32 (default here): the published hard-setting runs used it, so their stored runs "
                        "are found again; the harness's own default, auto, picks bf16 on CPUs with native bf16")
    p.add_argument("--val-data", default=None, help="validation images from this file's 'val' rows")
    p.add_argument("--test-data", default=None, help="test images from this file's 'test' rows")
    p.add_argument("--out", default=str(ROOT / "runs" / "efficacy"))
    p.add_argument("--train-generator", type=int, default=0, metavar="STEPS",
                   help="train/resume a cwgan-gp for this setting into --generator, then stop")
    p.add_argument("--generator-width", type=int, default=32)
    p.add_argument("--stop-at", type=int, default=None)
    args = p.parse_args(argv)
    if args.train_generator:
        train_generator(args)
        return 0
    res = ga.efficacy(
        args.data, [args.generator], train_subset=setting_rows(args.setting), model=args.model,
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seeds=args.seeds,
        allow_few_seeds=args.allow_few_seeds, ratios=args.ratio or 0.5,
        strategies=args.strategy or "not majority", arms=args.arm or ARMS, minority=MINORITY, criterion="balanced_accuracy",
        device=args.device, precision=args.precision, val=args.val_data, test=args.test_data,
        out=Path(args.out) / args.setting, setting=args.setting)
    print(Path(res["paths"]["report"]).read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
