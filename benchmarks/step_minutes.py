"""Minutes per 1,000 training steps for every backend at its defaults, at 32 and 64 px: the table
a user plans with (docs/performance.md).

Each cell is ``Trainer.fit`` at the backend's defaults (width, batch 64, n_critic, DiffAugment
"auto", precision "auto"), timed over ``--steps`` steps after a warm-up run, on the PBC train split
resized to the size. BAGAN's autoencoder stage is timed on its own (``ae_steps`` per 1,000).

    python benchmarks/step_minutes.py --steps 5
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import torch

import gan_augment as ga
from gan_augment.training.precision import describe, resolve_precision

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "pbc_bloodcell_64.npz"
BACKENDS = ("dcgan", "wgan-gp", "cwgan-gp", "bagan", "bagan-gp")


def fit_seconds(backend: str, data: ga.ImageDataset, size: int, steps: int, ae_steps: int = 1,
                compile: bool = False) -> float:
    """Wall seconds of one ``fit`` for ``steps`` steps at the backend's defaults."""
    extra = {"ae_steps": ae_steps} if backend.startswith("bagan") else {}
    names = data.class_names if ga.backend_info(backend).conditional else None
    m = ga.create(backend, image_size=size, class_names=names, **extra)
    t = time.perf_counter()
    m.fit(data, steps=steps, progress=False, sample_every=0, checkpoint_every=0, seed=0, compile=compile)
    return time.perf_counter() - t


def seconds_per_step(backend: str, data: ga.ImageDataset, size: int, steps: int, compile: bool = False) -> float:
    """Seconds per adversarial step: a run of 1 + ``steps`` steps minus a run of 1, after a warm-up
    (so one-off costs, torch.compile's included, cancel out)."""
    fit_seconds(backend, data, size, 1, compile=compile)  # warm-up: kernel choice, allocations
    return (fit_seconds(backend, data, size, 1 + steps, compile=compile)
            - fit_seconds(backend, data, size, 1, compile=compile)) / steps


def seconds_per_ae_step(backend: str, data: ga.ImageDataset, size: int, ae_steps: int) -> float:
    """Seconds per autoencoder step of BAGAN's stage: ``ae_steps`` of them minus one."""
    return (fit_seconds(backend, data, size, 1, ae_steps) - fit_seconds(backend, data, size, 1, 1)) / (ae_steps - 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backends", nargs="+", default=list(BACKENDS))
    p.add_argument("--sizes", nargs="+", type=int, default=[32, 64])
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--ae-steps", type=int, default=50, help="autoencoder steps timed for BAGAN's stage")
    p.add_argument("--compile", action="store_true",
                   help="a second row per backend with compile=True, timed in the same run")
    args = p.parse_args()
    warnings.simplefilter("ignore")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(f"device={device} threads={torch.get_num_threads()} torch={torch.__version__}; "
          f"{describe(resolve_precision('auto', device), 'auto', device)}")
    head = " | ".join(f"{s} px" for s in args.sizes)
    print(f"| backend | {head} |  (minutes per 1,000 steps, batch 64, default width)")
    print("| --- |" + " --- |" * len(args.sizes))
    for backend in args.backends:
        cells = []
        for size in args.sizes:
            data = ga.load_dataset(DATA, split="train", image_size=size)
            cells.append(f"{seconds_per_step(backend, data, size, args.steps) * 1000 / 60:.0f}")
        print(f"| {backend} | {' | '.join(cells)} |", flush=True)
        if args.compile:
            cells = []
            for size in args.sizes:
                data = ga.load_dataset(DATA, split="train", image_size=size)
                cells.append(f"{seconds_per_step(backend, data, size, args.steps, True) * 1000 / 60:.0f}")
            print(f"| {backend}, compile=True | {' | '.join(cells)} |", flush=True)
        if backend.startswith("bagan"):
            ae = []
            for size in args.sizes:
                data = ga.load_dataset(DATA, split="train", image_size=size)
                ae.append(f"{seconds_per_ae_step(backend, data, size, args.ae_steps) * 1000 / 60:.1f}")
            print(f"| {backend} autoencoder stage | {' | '.join(ae)} |", flush=True)


if __name__ == "__main__":
    main()
