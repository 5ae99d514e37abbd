"""Does bf16 cost quality? A 64 px wgan-gp trained twice at equal steps, fp32 and bf16 autocast,
same seed, same everything else; their loss curves side by side and a domain-feature FID of each
(the bundled ``pbc-domain-cnn``) against the held-out test neutrophils, beside the real floor.

On a CPU without native bf16 (AVX2 only) the bf16 run is emulated and many times slower; the
question here is quality, not speed, so it may run beside other work.

    python benchmarks/precision_quality.py --steps 300 --out runs/precision-quality
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import gan_augment as ga
from gan_augment.eval.extractors import load_extractor
from gan_augment.eval.metrics import fid_from_features

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "pbc_neutrophil_64.npz"


def train(precision: str, args) -> tuple[ga.GenerativeAugmenter, list[dict], float]:
    run = args.out / precision
    model = ga.create("wgan-gp", image_size=64, width=args.width)
    resume = (run / ga.CHECKPOINT_NAME).exists()
    t = time.perf_counter()
    model.fit(ga.load_dataset(DATA, split="train"), steps=args.steps, batch_size=args.batch, seed=args.seed,
              precision=precision, out_dir=str(run), resume=resume, checkpoint_every=50, sample_every=args.steps,
              log_every=10, progress=False)
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return model, history, time.perf_counter() - t


def plot(histories: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), dpi=100)
    for ax, key in zip(axes, ("d_loss", "g_loss")):
        for name, hist in histories.items():
            ax.plot([r["step"] for r in hist], [r[key] for r in hist], label=name, linewidth=1)
        ax.set_title(key.replace("_", " "))
        ax.set_xlabel("generator step")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--fakes", type=int, default=1000)
    p.add_argument("--out", type=Path, default=Path("runs/precision-quality"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"],
                   help="e.g. --precisions fp32 --seed 1: the seed-to-seed spread to judge a difference by")
    args = p.parse_args()
    extractor = load_extractor("pbc-domain-cnn")
    test = ga.load_dataset(DATA, split="test")
    train_ds = ga.load_dataset(DATA, split="train")
    test_feat, _ = extractor.extract(torch.as_tensor(test.tensor()).float() / 255)
    floor_rows = torch.randperm(len(train_ds), generator=torch.Generator().manual_seed(0))[:args.fakes]
    floor_feat, _ = extractor.extract(torch.as_tensor(train_ds.tensor())[floor_rows].float() / 255)
    floor = fid_from_features(test_feat, floor_feat)
    rows, histories = [], {}
    for precision in args.precisions:
        model, hist, seconds = train(precision, args)
        histories[precision] = hist
        fake_feat, _ = extractor.extract(model.sample(args.fakes, generator=torch.Generator().manual_seed(1)))
        last = hist[-1]
        rows.append((precision, fid_from_features(test_feat, fake_feat), last["d_loss"], last["g_loss"], seconds))
    plot(histories, args.out / "loss_curves.png")
    print(f"wgan-gp 64 px, width {args.width}, batch {args.batch}, {args.steps} steps, seed {args.seed}; "
          f"FID of {args.fakes} samples against {len(test)} test neutrophils (pbc-domain-cnn features)")
    print("| precision | domain FID (real floor) | last D loss | last G loss | wall seconds (this invocation) |")
    print("| --- | --- | --- | --- | --- |")
    for name, fid, d, g, s in rows:
        print(f"| {name} | {fid:.2f} ({floor:.2f}) | {d:.3f} | {g:.3f} | {s:.0f} |")
    print(f"loss curves: {args.out / 'loss_curves.png'}")


if __name__ == "__main__":
    main()
