"""Does DiffAugment help a conditional GAN that sees only 19 basophils? An ablation at equal steps.

Two cwgan-gp runs on the PBC "hard" training set (every training image, except that basophils are
cut to the same 19 as in benchmarks/efficacy.py: seed 0, 10% of 194), identical in everything
(seed, width, batch, steps, EMA) but ``diffaugment``: "color,translation,cutout" versus "none".
Each run is judged per class with the bundled ``pbc-domain-cnn`` features against the PBC test
split: FID, precision and recall, each beside its real-data floor (real training images of the
same counts against the same test images). Synthetic counts follow the full training split, so
the basophil row has about 200 synthetic images rather than 19. Basophil comes first: it is the class the setting is
about. Runs checkpoint into --out and resume, so a stopped run continues where it was.

    python benchmarks/diffaugment_ablation.py --steps 1000          # trains both, then reports
    python benchmarks/diffaugment_ablation.py --steps 1000 --report-only
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import gan_augment as ga
from gan_augment.metrics import evaluate

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "pbc_bloodcell_64.npz"
MINORITY = "basophil"
ARMS = {"diffaugment": "color,translation,cutout", "none": "none"}


def hard_training_set(path: Path) -> ga.ImageDataset:
    """The PBC training split with basophils cut to the benchmark's 19 (seed 0, 10%)."""
    train = ga.load_dataset(path, split="train")
    b = train.class_names.index(MINORITY)
    idx_b = np.nonzero(train.labels == b)[0]
    kept = np.sort(np.random.default_rng(0).choice(idx_b, size=max(1, round(0.10 * len(idx_b))), replace=False))
    rows = np.sort(np.concatenate([np.nonzero(train.labels != b)[0], kept]))
    return train.subset(rows)


def train_arm(arm: str, data: ga.ImageDataset, out: Path, args) -> ga.GenerativeAugmenter:
    run = out / arm
    model = ga.create("cwgan-gp", image_size=64, width=args.width, class_names=data.class_names)
    resume = (run / ga.CHECKPOINT_NAME).exists()
    t0 = time.perf_counter()
    model.fit(data, steps=args.steps, batch_size=args.batch, ema_decay=0.999, seed=0, out_dir=str(run),
              resume=resume, diffaugment=ARMS[arm], checkpoint_every=100, sample_every=250,
              progress=not args.quiet)
    print(f"{arm}: trained to step {args.steps} in {time.perf_counter() - t0:.0f} s (this invocation)")
    return model


def table(reports: dict[str, dict], names: list[str], counts: dict[str, int]) -> str:
    order = [MINORITY] + [n for n in names if n != MINORITY]
    lines = ["| class | train images | arm | FID (floor) | precision (floor) | recall (floor) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for cls in order:
        for arm, rep in reports.items():
            pc = rep["per_class"][cls]

            fid, prec, rec = (f"{pc[k]['value']:.2f} ({pc[k]['floor']:.2f})" for k in ("fid", "precision", "recall"))
            lines.append(f"| {cls} | {counts[cls]} | {arm} | {fid} | {prec} | {rec} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "diffaugment-ablation")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args()
    data = hard_training_set(args.data)
    test = ga.load_dataset(args.data, split="test")
    full_train = ga.load_dataset(args.data, split="train")
    print("training class counts:", data.class_counts())
    reports = {}
    for arm in ARMS:
        model = (ga.from_pretrained(str(args.out / arm)) if args.report_only else train_arm(arm, data, args.out, args))
        # synthetic counts and the floor follow the FULL training split (194 basophils, not 19), so
        # the basophil row compares about 200 synthetic images, not 19, with the test basophils
        reports[arm] = evaluate(model, full_train, test, "pbc-domain-cnn", seed=0)
    result = {"steps": args.steps, "width": args.width, "batch": args.batch, "class_counts": data.class_counts(),
              "reports": reports}
    (args.out / "ablation.json").write_text(json.dumps(result, indent=2))
    print(table(reports, data.class_names, data.class_counts()))


if __name__ == "__main__":
    main()
