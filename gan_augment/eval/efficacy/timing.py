"""The time estimate printed before the first arm trains, and the run's time at the end.

Measured, as the trainer's estimate is (gan_augment.training.timing): a throwaway copy of the
recipe's model takes the trainer's ``WARMUP_STEPS`` untimed warm-up steps and ``TIMED_STEPS``
timed ones on real training images, then scores one batch; the estimate multiplies those by the steps and images still to do.
The throwaway model touches no stored run, seed or RNG the runs use (it has its own generator).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from gan_augment.training.timing import TIMED_STEPS, WARMUP_STEPS, format_duration, synchronize

from .data import Images
from .train import PRECISIONS, Recipe

EVAL_BATCH = 256  # train.predict's batch


def seconds_per_step_and_image(recipe: Recipe, images: Images, num_classes: int,
                               device: torch.device) -> tuple[float, float]:
    """(seconds per optimiser step, seconds per scored image) of ``recipe`` on ``device``."""
    import timm

    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(12345)
        model = timm.create_model(recipe.model, pretrained=False, num_classes=num_classes,
                                  in_chans=int(images.images.shape[1])).to(device).train()
        opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr)
        dtype = PRECISIONS[recipe.precision]
        rng = np.random.default_rng(0)
        b = min(recipe.batch_size, len(images))
        x_all = images.images.float().div(127.5).sub(1)
        y_all = torch.as_tensor(images.labels)
        start = 0.0
        for step in range(WARMUP_STEPS + TIMED_STEPS):
            if step == WARMUP_STEPS:
                synchronize(device)
                start = time.perf_counter()
            idx = torch.as_tensor(rng.choice(len(images), b, replace=len(images) < b))
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                loss = torch.nn.functional.cross_entropy(model(x_all[idx].to(device)), y_all[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        synchronize(device)
        per_step = (time.perf_counter() - start) / TIMED_STEPS
        model.eval()
        x = x_all[:EVAL_BATCH].to(device)
        t0 = time.perf_counter()
        with torch.no_grad():
            model(x)
        synchronize(device)
        per_image = (time.perf_counter() - t0) / len(x)
    finally:
        torch.random.set_rng_state(state)
    return per_step, per_image


def estimate_line(runs: int, total_steps: int, total_eval_images: int, per_step: float, per_image: float,
                  stored: int, note: str = "") -> str:
    """"about 12 min for 14 runs (8,400 steps at 0.08 s/step; 3 stored runs reused; fp32 on cpu)"."""
    seconds = total_steps * per_step + total_eval_images * per_image
    reused = f"; {stored} stored run(s) reused" if stored else ""
    extra = f"; {note}" if note else ""
    return (f"about {format_duration(seconds)} for {runs} run(s) ({total_steps:,} steps at "
            f"{per_step:.2f} s/step{reused}{extra})")


def took_line(seconds: float, trained: int, stored: int) -> str:
    return f"took {format_duration(seconds)}: {trained} run(s) trained, {stored} reused from the store"
