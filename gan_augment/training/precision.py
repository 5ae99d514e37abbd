"""Which number format and memory layout to train and sample in, decided once per device.

``precision="auto"`` picks bf16 only where the hardware computes it natively: CUDA devices that
support bf16 (else fp16 with gradient scaling), and CPUs whose oneDNN has native bf16 (AVX512-BF16
or AMX on x86, the BF16 extension on Arm). Elsewhere bf16 is emulated; on the 2-core AVX2 machine
this project is built on, a bf16 autocast convolution ran about 30x slower than fp32 (see
docs/performance.md), so "auto" means fp32 there.
"""

from __future__ import annotations

import contextlib

import torch

from gan_augment.core.errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: x86 and Arm capability names (torch.cpu.get_capabilities) that mean bf16 maths in hardware
_NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16", "sve_bf16")


def cpu_has_native_bf16() -> bool:
    """True when oneDNN is present and reports bf16 support and the CPU has bf16 instructions."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        onednn_bf16 = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # older torch: no such query
        onednn_bf16 = False
    caps_fn = getattr(torch.cpu, "get_capabilities", None)  # torch >= 2.9
    caps = caps_fn() if caps_fn is not None else {}
    return onednn_bf16 and any(bool(caps.get(flag, False)) for flag in _NATIVE_BF16_FLAGS)


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``; None means plain fp32 (no autocast)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}.")
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_has_native_bf16():
        return torch.bfloat16
    return None


def describe(dtype: torch.dtype | None, precision: str, device: torch.device) -> str:
    """One line saying what was chosen and why, e.g. for the log and the time estimate."""
    name = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
    if precision != "auto":
        return f"{name} (as asked) on {device.type}"
    if device.type == "cpu" and dtype is None:
        return "fp32 on cpu (precision=auto: this CPU has no native bf16, which would be emulated and slower)"
    return f"{name} on {device.type} (precision=auto)"


def autocast(device: torch.device, dtype: torch.dtype | None):
    """torch.autocast for ``dtype``, or a no-op context for fp32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def make_scaler(device: torch.device, dtype: torch.dtype | None) -> torch.amp.GradScaler:
    """A gradient scaler, active only under fp16 (bf16 has fp32's exponent range)."""
    return torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)


def use_channels_last(setting: bool | str, device: torch.device) -> bool:
    """channels_last for the convolutional nets: "auto" turns it on where it was measured to be
    faster (CPU: 1.07x at 32 and 64 px, docs/performance.md); CUDA was not measured, so "auto"
    leaves it off there (pass channels_last=True to try it)."""
    if setting == "auto":
        return device.type == "cpu"
    return bool(setting)


def to_channels_last(*modules: torch.nn.Module) -> None:
    """Convert the 4-D parameters and buffers of ``modules`` in place."""
    for mod in modules:
        mod.to(memory_format=torch.channels_last)


def to_contiguous(*modules: torch.nn.Module) -> None:
    """Back to the default (contiguous) layout, in place."""
    for mod in modules:
        mod.to(memory_format=torch.contiguous_format)


def match_param_layout(optimizer: torch.optim.Optimizer) -> None:
    """Give loaded optimiser state (contiguous on disk) its parameter's memory layout, so the
    foreach update keeps its fast path after a resume; values are unchanged."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            for key, v in optimizer.state.get(p, {}).items():
                if torch.is_tensor(v) and v.shape == p.shape and v.stride() != p.stride():
                    optimizer.state[p][key] = torch.empty_like(p, dtype=v.dtype).copy_(v)
