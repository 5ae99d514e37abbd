"""Devices a user may name (``--device``, ``device=``): checked up front, so an unavailable one is
a one-line ConfigError naming what this machine has, never a torch assertion deep in training."""

from __future__ import annotations

import torch

from gan_augment.core.errors import ConfigError
from gan_augment.core.naming import did_you_mean


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()


def available_devices() -> list[str]:
    """What this machine can run on: ``cpu``, then ``cuda:0`` ... ``cuda:N-1``, then ``mps``."""
    out = ["cpu"]
    if torch.cuda.is_available():
        out += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available():
        out.append("mps")
    return out


def check_device(device: str | torch.device) -> torch.device:
    """``device`` as a torch.device, or a ConfigError naming the problem and the devices available."""
    have = available_devices()
    fix = f"Available here: {', '.join(have)}; or leave the device out to use the best one."
    if isinstance(device, torch.device):
        dev = device
    else:
        try:
            dev = torch.device(str(device))
        except (RuntimeError, TypeError, ValueError):
            hint = " Did you mean 'cuda'?" if str(device).lower().startswith("gpu") else \
                did_you_mean(str(device), [*have, "cuda", "mps"])
            raise ConfigError(f"unknown device {device!r}.{hint} {fix}") from None
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {str(device)!r} asked for, but no CUDA GPU is available to this "
                              f"torch ({torch.__version__}). {fix}")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device {str(device)!r} does not exist: this machine has "
                              f"{torch.cuda.device_count()} CUDA GPU(s). {fix}")
        return dev
    if dev.type == "mps":
        if not _mps_available():
            raise ConfigError(f"device {str(device)!r} asked for, but Apple's MPS is not available here. {fix}")
        return dev
    backend = getattr(torch, dev.type, None)  # e.g. torch.xpu
    if backend is not None and hasattr(backend, "is_available") and backend.is_available():
        return dev
    raise ConfigError(f"device {str(device)!r} is not available here. {fix}")
