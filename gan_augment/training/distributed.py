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


def sync_grads(world: int, module: torch.nn.Module) -> None:
    """Average gradients across processes (torchrun). Done by hand rather than with DDP's
    wrapper because the gradient penalty differentiates through the critic twice, which
    DDP's reducer does not support."""
    if world == 1:
        return
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def broadcast_from_rank0(world: int, *modules: torch.nn.Module) -> None:
    """Give every rank rank 0's parameters and buffers (the start of a run, the end of a
    prepare stage), so all ranks continue from the same weights."""
    if world == 1:
        return
    for mod in modules:
        for t in list(mod.parameters()) + list(mod.buffers()):
            dist.broadcast(t.data, src=0)


def sync_buffers(world: int, *modules: torch.nn.Module) -> None:
    """Give every rank rank 0's batch-norm statistics, as DDP's broadcast_buffers does."""
    if world == 1:
        return
    for mod in modules:
        for b in mod.buffers():
            dist.broadcast(b.data, src=0)


def any_rank(world: int, device: torch.device, *flags: bool) -> tuple[bool, ...]:
    """Each flag True on every rank when it is True on any (one tiny all_reduce): so that under
    torchrun every rank stops, or checkpoints, at the same step."""
    if world == 1:
        return tuple(flags)
    t = torch.tensor([int(f) for f in flags], device=device if device.type == "cuda" else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return tuple(bool(v) for v in t)


def gather_rng_states(rng: torch.Generator, world: int, device: torch.device) -> list[torch.Tensor]:
    """Every rank's noise-generator state (a collective under torchrun)."""
    state = rng.get_state()
    if world == 1:
        return [state]
    dev = device if dist.get_backend() == "nccl" else torch.device("cpu")
    local = state.to(dev)
    out = [torch.empty_like(local) for _ in range(world)]
    dist.all_gather(out, local)
    return [t.cpu() for t in out]
