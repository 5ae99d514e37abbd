"""Checkpoints for exact resume: networks, EMA, optimisers, schedules, grad scalers and every rank's RNG
state in one safetensors file (never pickle), written atomically.

Functions of what they are given: the model's networks, the stateful parts by name (optimisers,
schedules, scalers), the RNG states and the run's JSON state. The trainer decides what a run's
state is; this module only writes, reads and checks it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from gan_augment.core.errors import CheckpointError, ConfigError
from gan_augment.core.serialization import (
    atomic_save_safetensors,
    atomic_write_text,
    clean_keys,
    flatten_state,
    load_strict,
    read_safetensors,
    read_safetensors_metadata,
    unflatten_state,
)
from gan_augment.training.run_identity import first_change

CHECKPOINT_NAME = "checkpoint.safetensors"
BEST_NAME = "checkpoint-best.safetensors"
#: the stateful parts a checkpoint holds, by the names its skeleton uses
PART_NAMES = ("opt_g", "opt_d", "sched_g", "sched_d", "scaler_d", "scaler_g")


def write_checkpoint(path: Path, model: Any, parts: dict[str, Any], rng_states: list[torch.Tensor],
                     state: dict[str, Any]) -> Path:
    """Write ``model``'s generator, discriminator and EMA, the ``state_dict`` of each part
    (None: not saved, e.g. a constant schedule), each rank's RNG state (``rng.<rank>``) and the
    JSON ``state`` (plus the parts' skeleton) into ``path`` in one atomic write."""
    tensors: dict[str, torch.Tensor] = {}
    for prefix, mod in (("G", model.generator), ("D", model.discriminator)):
        for k, v in clean_keys(mod.state_dict()).items():
            tensors[f"{prefix}.{k}"] = v
    if model.ema is not None:
        for k, v in model.ema.state_dict().items():
            tensors[f"ema.{k}"] = v
    skeleton = {name: flatten_state(part.state_dict(), name, tensors) if part is not None else None
                for name, part in parts.items()}
    for r, st in enumerate(rng_states):
        tensors[f"rng.{r}"] = st
    full = {"format_version": 1, **state, "skeleton": skeleton, "ema": model.ema is not None}
    atomic_save_safetensors(tensors, path, metadata={"trainer_state": json.dumps(full)})
    return path


def load_checkpoint(path: Path, model: Any, parts: dict[str, Any], rank: int, world: int
                    ) -> tuple[dict[str, Any], torch.Tensor | None]:
    """Load ``path`` into ``model``'s networks and EMA and into ``parts``; return the JSON state
    and this rank's saved RNG state (None when the checkpoint came from another process count).
    Older checkpoints that kept one grad scaler for both networks load into both."""
    if not path.exists():
        raise CheckpointError(f"nothing to resume: {path} does not exist. Run without --resume to start.")
    tensors = read_safetensors(path)
    state = read_trainer_state(path)
    check_backend(path, state, model.name)

    def part(prefix):
        return {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}

    load_strict(model.generator, part("G"), what="checkpoint generator")
    load_strict(model.discriminator, part("D"), what="checkpoint discriminator")
    if state.get("ema"):
        if model.ema is None:
            raise CheckpointError(f"{path} was trained with EMA; pass the same ema_decay to resume exactly.")
        model.ema.load_state_dict(part("ema"))
    sk = dict(state["skeleton"])
    if "scaler_d" not in sk and sk.get("scaler") is not None:  # older checkpoints: one scaler for both
        sk["scaler_d"] = sk["scaler_g"] = sk["scaler"]
    for name, target in parts.items():
        if target is not None and sk.get(name) is not None:
            target.load_state_dict(unflatten_state(sk[name], tensors))
    same_world = f"rng.{rank}" in tensors and state.get("world_size", 1) == world
    return state, tensors[f"rng.{rank}"] if same_world else None


def check_backend(path: Path, state: dict[str, Any], backend: str) -> None:
    if state["backend"] != backend:
        raise CheckpointError(f"{path} is a {state['backend']!r} run, not {backend!r}; "
                              f"pass --backend {state['backend']}.")


def resume_state(out: Path | None, backend: str, data_classes: list[str]) -> dict[str, Any]:
    """The checkpoint's trainer state, read before setup so that another backend or other
    classes are refused with one line before any network is built."""
    if out is None:
        raise ConfigError("resume needs out_dir (the folder of the run to continue).")
    path = out / CHECKPOINT_NAME
    if not path.exists():
        raise CheckpointError(f"nothing to resume: {path} does not exist. Run without --resume to start.")
    state = read_trainer_state(path)
    check_backend(path, state, backend)
    if "data_classes" in state:
        change = first_change({"data_classes": state["data_classes"]}, {"data_classes": list(data_classes)})
        if change:
            refuse(path, state, change)
    return state


def refuse_changed_run(path: Path, state: dict[str, Any], now: dict[str, Any]) -> str | None:
    """Raise ConfigError naming the first thing that differs between the checkpoint's run and
    ``now`` (``data_classes``, ``model_config``, ``data_sha256``); return the note to print when
    an older checkpoint cannot be checked, else None."""
    now = {**now, "data_sha256": now["data_sha256"] if "data_sha256" in state else None}
    change = first_change(state, now)
    if change:
        refuse(path, state, change)
    if "data_sha256" not in state:
        return (f"note: {path} predates data fingerprints: its data and class names are not checked "
                "on resume (settings and layout are).")
    return None


def refuse(path: Path, state: dict[str, Any], change: str) -> None:
    raise ConfigError(f"cannot resume {path.parent}: {change} since its checkpoint (step "
                      f"{state.get('step', '?')}); resume with the run's own data and settings, "
                      "or pass a new --out folder to start a new run.")


def checkpoint_step(path: Path) -> int | str:
    """The step a checkpoint holds, or "unknown" when it cannot be read."""
    try:
        return read_trainer_state(path)["step"]
    except CheckpointError:
        return "unknown"


def kept_history(metrics: Path, step: int, rewrite: bool) -> list[dict[str, Any]]:
    """The logged records up to ``step`` (what a resumed run continues from); with ``rewrite``
    (rank 0) forget the records logged after the checkpoint in the file too."""
    if not metrics.exists():
        return []
    kept = [ln for ln in metrics.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] <= step]
    if rewrite:
        atomic_write_text(metrics, "".join(ln + "\n" for ln in kept))
    return [json.loads(ln) for ln in kept]


def read_trainer_state(path: Path) -> dict[str, Any]:
    """The JSON trainer state stored in a checkpoint's safetensors metadata."""
    try:
        return json.loads(read_safetensors_metadata(path)["trainer_state"])
    except Exception as exc:  # unreadable header, no key, bad JSON: all mean "not a checkpoint"
        raise CheckpointError(f"{path} is not a readable gan-augment checkpoint ({type(exc).__name__}: "
                              f"{exc}); resume from another run folder or start a new one.") from exc


def jsonable(obj):
    return json.loads(json.dumps(obj, default=str))
