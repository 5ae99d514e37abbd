"""Collapse and divergence monitors: a fixed-latent sample set whose diversity falls when the
generator collapses, and a watch on the discriminator loss. Functions of what they are given
(the samples, the logged history, the monitor's own state and the settings); the trainer saves
the best checkpoint and warns or stops on what they find."""

from __future__ import annotations

import math
from contextlib import AbstractContextManager
from typing import Any

import torch


def fixed_samples(model: Any, G: torch.nn.Module, z: torch.Tensor, labels: torch.Tensor | None,
                  device: torch.device, autocast: AbstractContextManager) -> torch.Tensor:
    """``G``'s images in [-1, 1] for the fixed latents ``z`` (and ``labels``), made through
    ``model.generate`` in eval mode and under ``autocast``, returned on the CPU."""
    was = G.training
    G.eval()
    lb = labels.to(device) if labels is not None else None
    try:
        with torch.inference_mode(), autocast:
            x = model.generate(G, z.to(device), lb).float().cpu()
        return x.clone()  # an ordinary tensor again, usable outside inference mode
    finally:
        G.train(was)


def diversity(samples: torch.Tensor) -> float:
    """Mean pairwise L2 distance between samples, in [-1, 1] pixel units per pixel. Falls
    towards 0 when the generator collapses onto a few modes."""
    x = samples.flatten(1)
    return float(torch.pdist(x).mean() / math.sqrt(x.shape[1]))


def check_health(state: dict[str, Any], history: list[dict[str, Any]], div: float, step: int,
                 cfg: Any) -> str | None:
    """Update the monitor ``state`` with this check's diversity ``div`` and the recent
    discriminator losses of ``history``; return the problem to report (collapse below
    ``cfg.collapse_threshold`` of the first diversity, or a D loss that grew for
    ``cfg.divergence_patience`` checks in a row), else None."""
    state.setdefault("diversity_first", div)
    d_losses = [r["d_loss"] for r in history[-max(1, cfg.monitor_every // cfg.log_every):]]
    d_now = sum(d_losses) / max(1, len(d_losses))
    worse = state.get("d_prev") is not None and abs(d_now) > abs(state["d_prev"]) * 1.05
    state["worse_count"] = state.get("worse_count", 0) + 1 if worse else 0
    state["d_prev"] = d_now
    if history:
        history[-1]["diversity"] = div
    if div < cfg.collapse_threshold * state["diversity_first"]:
        return (f"possible mode collapse at step {step}: sample diversity {div:.4f} is below "
                f"{cfg.collapse_threshold:.0%} of its first value {state['diversity_first']:.4f}")
    if state["worse_count"] >= cfg.divergence_patience:
        return (f"possible divergence at step {step}: the discriminator loss magnitude grew "
                f"for {state['worse_count']} checks in a row (now {d_now:.4f})")
    return None


def first_non_finite(losses: torch.Tensor, world: int = 1) -> int:
    """Index of the first row of ``losses`` (steps x (d, g)) with a NaN or inf, or its length
    when all are finite; under torchrun the smallest over ranks, so all stop at the same step."""
    finite = torch.isfinite(losses).all(dim=1)
    first = torch.tensor([int((~finite).nonzero()[0, 0]) if not bool(finite.all()) else len(losses)])
    if world > 1:
        import torch.distributed as dist

        dist.all_reduce(first, op=dist.ReduceOp.MIN)
    return int(first)


def is_best(best: dict[str, Any] | None, div: float) -> bool:
    """True when ``div`` is at least the best diversity so far (the best checkpoint moves)."""
    return best is None or div >= best["diversity"]
