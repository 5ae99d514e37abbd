"""torchrun support: start and end the process group from torchrun's environment variables.

Seed semantics under torchrun: every rank builds the model from the same seed and then takes rank
0's weights (broadcast); the data order is shared and each rank trains on its slice of every
global batch (``batch_size`` is the global batch); latent noise is drawn from a per-rank
generator seeded with (seed, rank), and every rank's generator state is saved in the checkpoint,
so a resume with the same number of processes is exact.
"""

from __future__ import annotations

import contextlib
import os

import torch
import torch.distributed as dist


@contextlib.contextmanager
def distributed_from_env():
    """Initialise torch.distributed when launched by torchrun with WORLD_SIZE > 1 (nccl on CUDA,
    gloo otherwise); a no-op for a plain process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or dist.is_initialized():
        yield
        return
    backend = os.environ.get("GAN_AUGMENT_DIST_BACKEND") or ("nccl" if torch.cuda.is_available() else "gloo")
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend=backend)
    try:
        yield
    finally:
        dist.destroy_process_group()
