"""The trainer's data path: the whole uint8 training set moved to the device once when it fits
(a few thousand 64 px images are tens of MB), else a copy of each batch from host memory;
batches in the order a pure function of (seed, epoch) gives, so resume needs no data state; with
``class_balance`` the epoch is drawn with replacement, rare classes more often."""

from __future__ import annotations

import torch

from gan_augment.core.layout import uint8_to_signed
from gan_augment.training.config import balanced_epoch, epoch_permutation

#: share of the device's free memory the resident training set may take
DEVICE_SHARE = 0.25


def fits_on_device(nbytes: int, device: torch.device) -> bool:
    """True when ``nbytes`` can stay on ``device`` for the whole run (always on the CPU)."""
    if device.type == "cpu":
        return True
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return nbytes <= DEVICE_SHARE * free
    if device.type == "mps":
        return nbytes <= DEVICE_SHARE * torch.mps.recommended_max_memory()
    return False


class BatchSource:
    """Yields the k-th discriminator batch of a run (this rank's share) in [-1, 1] on the device."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, seed: int,
                 device: torch.device, rank: int = 0, world: int = 1, channels_last: bool = False,
                 class_balance: float = 0.0):
        self.resident = fits_on_device(images.nbytes + labels.nbytes, device)
        if self.resident:
            images, labels = images.to(device), labels.to(device)
        self.images, self.labels = images, labels
        self.batch_size, self.seed, self.device = batch_size, seed, device
        self.class_balance = class_balance
        self.rank, self.world = rank, world
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.batches_per_epoch = max(1, len(images) // batch_size)
        self._perm_epoch: int | None = None
        self._perm = torch.empty(0, dtype=torch.long)

    def __call__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, pos = divmod(k, self.batches_per_epoch)
        if self._perm_epoch != epoch:  # one permutation per epoch, not per batch
            order = (balanced_epoch(self.labels, self.class_balance, self.seed, epoch) if self.class_balance
                     else epoch_permutation(len(self.images), self.seed, epoch))
            self._perm = order.to(self.images.device)
            self._perm_epoch = epoch
        idx = self._perm[pos * self.batch_size:(pos + 1) * self.batch_size][self.rank::self.world]
        x = self.images[idx].to(self.device).contiguous(memory_format=self.memory_format)
        x = uint8_to_signed(x)  # .float() keeps the memory format
        return x, self.labels[idx].to(self.device)
