"""The handle a backend's ``prepare`` stage (BAGAN's autoencoder) gets instead of the trainer:
the run's training rows, device, precision and seed, its step iterator and the rank-0 broadcast,
and nothing it could use to reach into the loop."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch

from gan_augment.training.distributed import broadcast_from_rank0


@dataclass(frozen=True)
class PrepareContext:
    """What a stage before adversarial training may use.

    ``images`` are the run's uint8 N,C,H,W training images in host memory and ``labels`` their
    int64 class indices; ``seed`` is the run's seed (derive the stage's own generator from it,
    so a run and its resume stay identical).
    """

    images: torch.Tensor
    labels: torch.Tensor
    device: torch.device
    seed: int
    _world: int
    _steps: Callable[[int, str], Iterator[int]]
    _autocast: Callable[[], AbstractContextManager]

    def steps(self, n: int, what: str) -> Iterator[int]:
        """``range(n)`` with a progress bar of its own (``bagan autoencoder``) that also moves the
        run's bar; a Ctrl-C stops here (a half-done stage is not checkpointed)."""
        return self._steps(n, what)

    def autocast(self) -> AbstractContextManager:
        """The run's autocast (its precision), or nothing under fp32."""
        return self._autocast()

    def broadcast(self, *modules: torch.nn.Module) -> None:
        """Under torchrun, give every rank rank 0's weights of ``modules`` (call it at the end of
        the stage, so every rank continues from rank 0's result); a no-op in one process."""
        broadcast_from_rank0(self._world, *modules)
