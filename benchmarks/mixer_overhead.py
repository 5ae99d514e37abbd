"""What does SyntheticMix cost a training loop?

Prints, in one run:
1. images/s of a timm ResNet-18 training loop on the PBC train split, without and with
   ``SyntheticMix(ratio=0.5)``, measured over the same number of steps (the lazy bank is built
   inside the measured window, so this is the worst case for a short run), and the amortised
   cost of one epoch's bank against one epoch of training;
2. generation images/s banked (``bank_batch=256``) versus one forward pass per item.

The generator is an untrained cwgan-gp at 64 px and default width unless --model is given: its
compute per image equals a trained one's. Target: the mixer costs under 5% of loop throughput.

    python benchmarks/mixer_overhead.py --steps 30 --batch-size 32
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

import gan_augment as ga

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "pbc_bloodcell_64.npz"


def train_throughput(dataset, steps, batch_size, workers, device, seed=0):
    """images/s of a plain timm loop over ``dataset`` (uint8 CHW items), after 2 warm-up steps."""
    import timm

    torch.manual_seed(seed)
    model = timm.create_model("resnet18", pretrained=False, num_classes=8).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True,
                                         num_workers=workers, generator=torch.Generator().manual_seed(seed))
    mean = torch.tensor([0.485, 0.456, 0.406], device=device).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], device=device).view(1, 3, 1, 1)
    it, n, t0 = iter(loader), 0, None
    for step in range(steps + 2):
        if step == 2:
            t0 = time.perf_counter()
        x, y = next(it)
        x = (x.to(device).float() / 255 - mean) / std
        loss = torch.nn.functional.cross_entropy(model(x), y.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step >= 2:
            n += len(y)
    return n / (time.perf_counter() - t0)


def generation_rate(augmenter, n, bank_batch, seed=0):
    labels = torch.arange(n) % augmenter.num_classes if augmenter.conditional else None
    t0 = time.perf_counter()
    for start in range(0, n, bank_batch):
        m = min(bank_batch, n - start)
        g = torch.Generator().manual_seed(seed + start)
        augmenter.sample(m, labels=labels[start:start + m] if labels is not None else None, generator=g)
    return n / (time.perf_counter() - t0)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--model", help="gan-augment model to generate with (default: untrained cwgan-gp, 64 px)")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--gen-images", type=int, default=256)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args(argv)

    real = ga.load_dataset(args.data, split="train")
    aug = (ga.from_pretrained(args.model) if args.model else
           ga.create("cwgan-gp", image_size=64, class_names=real.class_names))
    mix = ga.SyntheticMix(real, aug, strategy="not majority", ratio=0.5, seed=0)

    base_rate = train_throughput(real, args.steps, args.batch_size, args.workers, args.device)
    mix_rate = train_throughput(mix, args.steps, args.batch_size, args.workers, args.device)
    t0 = time.perf_counter()
    mix.set_epoch(1)
    mix.build_bank()
    bank_s = time.perf_counter() - t0
    epoch_s = len(mix) / base_rate
    banked = generation_rate(aug, args.gen_images, 256)
    single_n = max(8, args.gen_images // 8)
    single = generation_rate(aug, single_n, 1)

    rows = [
        ("timm loop, real only", f"{base_rate:.1f} img/s", "1.00"),
        ("timm loop + SyntheticMix(ratio=0.5)", f"{mix_rate:.1f} img/s", f"{mix_rate / base_rate:.2f}"),
        ("mixer cost in the measured window", f"{100 * (1 - mix_rate / base_rate):.1f} %", ""),
        ("bank for one epoch (amortised), refresh='epoch'", f"{bank_s:.1f} s per {epoch_s:.0f} s epoch",
         f"{100 * bank_s / (epoch_s + bank_s):.1f} %"),
        ("amortised, refresh=2 (new bank every 2 epochs)", "", f"{100 * bank_s / (2 * epoch_s + bank_s):.1f} %"),
        ("amortised, refresh='fixed', 10 epochs", "", f"{100 * bank_s / (10 * epoch_s + bank_s):.1f} %"),
        ("generation, banked (256 per pass)", f"{banked:.1f} img/s", f"{banked / single:.1f}x"),
        ("generation, one per forward pass", f"{single:.1f} img/s", "1.0x"),
    ]
    print(f"mixer overhead: {aug.name} generator {aug.image_shape}, {mix.plan.n_synthetic} synthetic + "
          f"{mix.plan.n_real} real per epoch, steps={args.steps}, batch={args.batch_size}, "
          f"workers={args.workers}, device={args.device}, torch threads={torch.get_num_threads()}")
    print()
    print("| measurement | value | ratio |")
    print("| --- | --- | --- |")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")


if __name__ == "__main__":
    main()
