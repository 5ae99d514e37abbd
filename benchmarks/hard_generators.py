"""Train a generator for the PBC hard setting until its per-class domain FID on validation images
stops improving, then keep the best checkpoint's generator.

The images are the efficacy harness's own: the PBC training split with basophils cut to the same
19 as benchmarks/efficacy.py's hard setting (its ``hard_rows``), then the harness's default
stratified validation carve (15%, split seed 0). The generator
trains on the fit rows only, so the validation images it is judged on are images it never saw;
no removed basophil and no test image is ever read. Every ``--chunk`` steps the EMA generator is
scored: per class, ``--fakes`` synthetic images against that class's validation images in the
bundled ``pbc-domain-cnn`` features. The mean over classes decides; basophil, with 3 validation
images, is logged but too small to decide on. Training stops after ``--patience`` checks without
a new best (or at ``--max-steps``); the best generator is saved to ``<out>/best`` in the Hub
layout. Everything resumes: run the same command again after any stop.

    python benchmarks/hard_generators.py --backend cwgan-gp --out runs/hard-cwgan-gp
    python benchmarks/hard_generators.py --backend bagan-gp --out runs/hard-bagan-gp
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from efficacy import (  # benchmarks/efficacy.py: the one definition of the hard setting
    DATA,
    MINORITY,
    hard_rows,
)

import gan_augment as ga
from gan_augment.eval.efficacy.data import stratified_split
from gan_augment.eval.efficacy.runner import SPLIT_SEED, VAL_FRACTION
from gan_augment.eval.extractors import load_extractor
from gan_augment.eval.metrics import fid_from_features


def hard_fit_and_val(path: Path) -> tuple[ga.ImageDataset, ga.ImageDataset]:
    """(fit, validation) of the hard setting, carved exactly as the efficacy harness carves them."""
    train = ga.load_dataset(path, split="train")
    hard = train.subset(hard_rows(train))
    fit_rows, val_rows = stratified_split(np.asarray(hard.labels), VAL_FRACTION, SPLIT_SEED)
    return hard.subset(fit_rows), hard.subset(val_rows)


def val_fid(model, val: ga.ImageDataset, extractor, fakes: int, seed: int = 0) -> dict[str, float]:
    """Per-class FID of ``fakes`` synthetic images against each class's validation images."""
    real = torch.as_tensor(val.tensor()).float() / 255.0
    labels = np.asarray(val.labels)
    real_feat, _ = extractor.extract(real)
    out = {}
    for c, name in enumerate(val.class_names):
        g = torch.Generator().manual_seed(seed + c)
        fake_feat, _ = extractor.extract(model.sample(fakes, labels=[c] * fakes, generator=g))
        out[name] = fid_from_features(real_feat[labels == c], fake_feat)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", default="cwgan-gp")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--diffaugment", default="color,translation,cutout")
    p.add_argument("--chunk", type=int, default=500, help="steps between validation checks")
    p.add_argument("--patience", type=int, default=4, help="checks without a new best before stopping")
    p.add_argument("--max-steps", type=int, default=20000)
    p.add_argument("--fakes", type=int, default=200, help="synthetic images per class per check")
    args = p.parse_args()

    fit, val = hard_fit_and_val(args.data)
    print(f"fit {fit.class_counts()}\nval {val.class_counts()}")
    extractor = load_extractor("pbc-domain-cnn")
    model = ga.create(args.backend, image_size=64, width=args.width, class_names=fit.class_names)
    log_path = args.out / "val_fid.jsonl"
    checks = [json.loads(line) for line in log_path.read_text().splitlines()] if log_path.exists() else []
    best = min(checks, key=lambda r: r["mean"]) if checks else None
    done = checks[-1]["step"] if checks else 0
    while done < args.max_steps:
        if best is not None and sum(r["step"] > best["step"] for r in checks) >= args.patience:
            print(f"stopped: no new best in {args.patience} checks since step {best['step']}")
            break
        stop = done + args.chunk
        t0 = time.perf_counter()
        model.fit(fit, steps=args.max_steps, stop_at=stop, batch_size=args.batch, ema_decay=0.999, seed=0,
                  out_dir=str(args.out / "run"), resume=(args.out / "run" / ga.CHECKPOINT_NAME).exists(),
                  diffaugment=args.diffaugment, checkpoint_every=args.chunk, sample_every=args.chunk * 2)
        seconds = time.perf_counter() - t0
        fids = val_fid(model, val, extractor, args.fakes)
        row = {"step": stop, "mean": float(np.mean(list(fids.values()))), "per_class": fids,
               "train_seconds": round(seconds, 1)}
        checks.append(row)
        with log_path.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        if best is None or row["mean"] < best["mean"]:
            best = row
            model.save_pretrained(args.out / "best")
        print(f"step {stop}: mean val FID {row['mean']:.2f} (basophil {fids[MINORITY]:.2f}); "
              f"best {best['mean']:.2f} at step {best['step']}", flush=True)
        done = stop
    print(json.dumps({"best": best}, indent=1))


if __name__ == "__main__":
    main()
