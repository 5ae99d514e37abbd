"""The generator's exponential moving average, with a warm-up so that a short or young run's
average is not dominated by the untrained initial weights."""

from __future__ import annotations

from collections.abc import Callable

import torch


def warmup_decay(decay: float, step: int) -> float:
    """min(decay, (1 + t) / (10 + t)) at generator step t."""
    return min(decay, (1 + step) / (10 + step))


def make_ema(G: torch.nn.Module, decay: float, step: Callable[[], int]) -> torch.nn.Module:
    """An ``AveragedModel`` of ``G`` (parameters and buffers) updated with ``warmup_decay`` at the
    step ``step()`` returns: the count comes from Python, not from the model's counter, so an
    update needs no host sync on GPU. Integer buffers (num_batches_tracked) are copied."""
    from torch.optim.swa_utils import AveragedModel

    def update(ema_params, params, num_averaged) -> None:
        floats = [(e, p) for e, p in zip(ema_params, params) if e.is_floating_point()]
        if floats:
            torch._foreach_lerp_([e for e, _ in floats], [p for _, p in floats], 1.0 - warmup_decay(decay, step()))
        for e, p in zip(ema_params, params):
            if not e.is_floating_point():
                e.copy_(p)

    return AveragedModel(G, multi_avg_fn=update, use_buffers=True)
