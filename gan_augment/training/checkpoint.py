"""Checkpoints for exact resume: networks, EMA, optimisers, schedules, grad scalers and every rank's RNG
state in one safetensors file (never pickle), written atomically."""

from __future__ import annotations

import dataclasses
import json
import warnings
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
from gan_augment.training.distributed import gather_rng_states
from gan_augment.training.precision import match_param_layout
from gan_augment.training.run_identity import data_fingerprint, first_change

CHECKPOINT_NAME = "checkpoint.safetensors"
BEST_NAME = "checkpoint-best.safetensors"


class CheckpointMixin:
    """Needs from the Trainer: model, cfg, out, step, prepared, best, monitor_state, history, rng,
    rank, world, is_main, device, the optimisers, schedulers and the two scalers."""

    def save_checkpoint(self, path: Path | None = None) -> Path | None:
        """Everything needed for exact resume, in one safetensors file written atomically.
        Under torchrun every rank must call it; only rank 0 writes."""
        path = path or self.out / CHECKPOINT_NAME
        rng_states = gather_rng_states(self.rng, self.world, self.device)
        if not self.is_main:
            return None
        m = self.model
        tensors: dict[str, torch.Tensor] = {}
        for prefix, mod in (("G", m.generator), ("D", m.discriminator)):
            for k, v in clean_keys(mod.state_dict()).items():
                tensors[f"{prefix}.{k}"] = v
        if m.ema is not None:
            for k, v in m.ema.state_dict().items():
                tensors[f"ema.{k}"] = v
        skeleton = {
            "opt_g": flatten_state(self.opt_g.state_dict(), "opt_g", tensors),
            "opt_d": flatten_state(self.opt_d.state_dict(), "opt_d", tensors),
            "sched_g": flatten_state(self.sched_g.state_dict(), "sched_g", tensors) if self.cfg.schedule == "cosine" else None,
            "sched_d": flatten_state(self.sched_d.state_dict(), "sched_d", tensors) if self.cfg.schedule == "cosine" else None,
            "scaler_d": flatten_state(self.scaler_d.state_dict(), "scaler_d", tensors),
            "scaler_g": flatten_state(self.scaler_g.state_dict(), "scaler_g", tensors),
        }
        for r, st in enumerate(rng_states):
            tensors[f"rng.{r}"] = st
        state = {
            "format_version": 1,
            "step": self.step,
            "total_steps": self.total_steps,
            "prepared": self.prepared,
            "backend": m.name,
            "model_config": m.get_config(),
            "train_config": jsonable(dataclasses.asdict(self.cfg)),
            "skeleton": skeleton,
            "best": self.best,
            "monitor_state": self.monitor_state,
            "ema": m.ema is not None,
            "world_size": self.world,
            "diffaugment": self.diffaugment,
            "data_classes": list(self.data.class_names),
            "data_sha256": self.data_sha256,
        }
        atomic_save_safetensors(tensors, path, metadata={"trainer_state": json.dumps(state)})
        if path.name == CHECKPOINT_NAME:
            self._write_model()
        return path

    @property
    def data_sha256(self) -> str:
        """Fingerprint of the rows this run trains on (computed once)."""
        if getattr(self, "_data_sha256", None) is None:
            self._data_sha256 = data_fingerprint(self.images, self.labels)
        return self._data_sha256

    def resume_state(self, data) -> dict[str, Any]:
        """The checkpoint's trainer state, read before setup so that another backend or other
        classes are refused with one line before any network is built."""
        from gan_augment.core.data import as_dataset

        if self.out is None:
            raise ConfigError("resume needs out_dir (the folder of the run to continue).")
        path = self.out / CHECKPOINT_NAME
        if not path.exists():
            raise CheckpointError(f"nothing to resume: {path} does not exist. Run without --resume to start.")
        state = read_trainer_state(path)
        if state["backend"] != self.model.name:
            raise CheckpointError(f"{path} is a {state['backend']!r} run, not {self.model.name!r}; "
                                  f"pass --backend {state['backend']}.")
        if "data_classes" in state:
            change = first_change({"data_classes": state["data_classes"]},
                                  {"data_classes": list(as_dataset(data).class_names)})
            if change:
                self._refuse(path, state, change)
        return state

    def refuse_changed_run(self, state: dict[str, Any]) -> None:
        """Raise ConfigError naming the first thing that differs from the checkpoint's run
        (layout, network settings, data); say once when an older checkpoint cannot be checked."""
        path = self.out / CHECKPOINT_NAME
        now = {"data_classes": list(self.data.class_names), "model_config": self.model.get_config(),
               "data_sha256": self.data_sha256 if "data_sha256" in state else None}
        change = first_change(state, now)
        if change:
            self._refuse(path, state, change)
        if "data_sha256" not in state:
            self._say(f"note: {path} predates data fingerprints: its data and class names are not checked "
                      "on resume (settings and layout are).")

    def _refuse(self, path: Path, state: dict[str, Any], change: str) -> None:
        raise ConfigError(f"cannot resume {path.parent}: {change} since its checkpoint (step "
                          f"{state.get('step', '?')}); resume with the run's own data and settings, "
                          "or pass a new --out folder to start a new run.")

    @staticmethod
    def _checkpoint_step(path: Path) -> int | str:
        try:
            return read_trainer_state(path)["step"]
        except CheckpointError:
            return "unknown"

    def load_checkpoint(self, path: Path | None = None) -> None:
        if self.out is None:
            raise ConfigError("resume needs out_dir (the folder of the run to continue).")
        path = path or self.out / CHECKPOINT_NAME
        if not path.exists():
            raise CheckpointError(f"nothing to resume: {path} does not exist. Run without --resume to start.")
        tensors = read_safetensors(path)
        state = read_trainer_state(path)
        m = self.model
        if state["backend"] != m.name:
            raise CheckpointError(f"{path} is a {state['backend']!r} run, not {m.name!r}; pass --backend {state['backend']}.")
        def part(prefix):
            return {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}

        load_strict(m.generator, part("G"), what="checkpoint generator")
        load_strict(m.discriminator, part("D"), what="checkpoint discriminator")
        if state.get("ema"):
            if m.ema is None:
                raise CheckpointError(f"{path} was trained with EMA; pass the same ema_decay to resume exactly.")
            m.ema.load_state_dict(part("ema"))
        sk = state["skeleton"]
        self.opt_g.load_state_dict(unflatten_state(sk["opt_g"], tensors))
        self.opt_d.load_state_dict(unflatten_state(sk["opt_d"], tensors))
        if sk.get("sched_g") is not None:
            self.sched_g.load_state_dict(unflatten_state(sk["sched_g"], tensors))
            self.sched_d.load_state_dict(unflatten_state(sk["sched_d"], tensors))
        if "scaler_d" in sk:
            self.scaler_d.load_state_dict(unflatten_state(sk["scaler_d"], tensors))
            self.scaler_g.load_state_dict(unflatten_state(sk["scaler_g"], tensors))
        elif sk.get("scaler") is not None:  # older checkpoints kept one scaler for both
            legacy = unflatten_state(sk["scaler"], tensors)
            self.scaler_d.load_state_dict(legacy)
            self.scaler_g.load_state_dict(legacy)
        for opt in (self.opt_g, self.opt_d):  # channels_last parameters: same layout for the state
            match_param_layout(opt)
        if f"rng.{self.rank}" in tensors and state.get("world_size", 1) == self.world:
            self.rng.set_state(tensors[f"rng.{self.rank}"])
        else:
            warnings.warn(f"{path} was written by {state.get('world_size', 1)} process(es) and this run has "
                          f"{self.world}: training continues, but not bit-exactly.", stacklevel=2)
            self.rng.manual_seed(self.cfg.seed * 7919 + 17 + self.rank + 104729 * self.step)
        self.step = int(state["step"])
        self.prepared = bool(state.get("prepared", True))
        self.best = state.get("best")
        self.monitor_state = state.get("monitor_state") or {}
        self._checkpoint_diffaugment = state.get("diffaugment")
        metrics = self.out / "metrics.jsonl"
        if metrics.exists():  # forget what was logged after the checkpoint
            kept = [ln for ln in metrics.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] <= self.step]
            self.history = [json.loads(ln) for ln in kept]
            if self.is_main:
                atomic_write_text(metrics, "".join(ln + "\n" for ln in kept))


def read_trainer_state(path: Path) -> dict[str, Any]:
    """The JSON trainer state stored in a checkpoint's safetensors metadata."""
    try:
        return json.loads(read_safetensors_metadata(path)["trainer_state"])
    except Exception as exc:  # unreadable header, no key, bad JSON: all mean "not a checkpoint"
        raise CheckpointError(f"{path} is not a readable gan-augment checkpoint ({type(exc).__name__}: "
                              f"{exc}); resume from another run folder or start a new one.") from exc


def jsonable(obj):
    return json.loads(json.dumps(obj, default=str))
