"""The one training loop every adversarial backend shares.

A backend supplies networks and its discriminator/generator losses; this loop owns devices,
precision, optimisers, schedules, n_critic, EMA, logging, sample grids, checkpoints, exact
resume, divergence checks and (under torchrun) gradient averaging across processes.

Exact resume: every random draw inside a step comes from one generator whose state is saved,
and the data order is a pure function of (seed, epoch), so N steps + resume + N steps equals
2N steps straight.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from gan_augment.data import as_dataset
from gan_augment.errors import CheckpointError, ConfigError, TrainingDiverged
from gan_augment.interface import AdversarialAugmenter
from gan_augment.weights import (
    atomic_save_safetensors,
    atomic_write_text,
    clean_keys,
    flatten_state,
    read_safetensors,
    read_safetensors_metadata,
    unflatten_state,
)

CHECKPOINT_NAME = "checkpoint.safetensors"
BEST_NAME = "checkpoint-best.safetensors"


@dataclass
class TrainConfig:
    """Every knob of the shared loop. A backend's ``train_defaults`` override these defaults;
    the user's values override both."""

    steps: int | None = None  # generator updates; or give epochs
    epochs: float | None = None  # passes over the data by the discriminator
    batch_size: int = 64
    optimizer: str = "adam"  # adam | rmsprop
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    schedule: str = "constant"  # constant | cosine
    min_lr_ratio: float = 0.0  # cosine decays to lr * min_lr_ratio
    n_critic: int = 1  # discriminator updates per generator update
    ema_decay: float | None = None  # e.g. 0.999: sample from an EMA of the generator
    seed: int = 0
    device: str = "auto"  # auto: cuda, then mps, then cpu
    precision: str = "auto"  # auto (bf16/fp16 on GPU, fp32 on CPU) | fp32 | bf16 | fp16
    out_dir: str | None = None
    log_every: int = 10
    sample_every: int = 500
    checkpoint_every: int = 500
    resume: bool = False
    stop_at: int | None = None  # stop early (staged runs); schedules still span `steps`
    progress: bool = True
    grid_size: int = 64
    monitor_every: int = 0  # 0: off; else diversity/divergence checks every N steps
    collapse_threshold: float = 0.5  # warn when diversity falls below this share of its first value
    divergence_patience: int = 5  # consecutive worsening checks of the D loss before a warning
    early_stop: bool = False  # stop on collapse/divergence instead of warning
    sync_batchnorm: bool = False  # under torchrun
    # DiffAugment on every critic input: "auto" (on below 5,000 training images), a policy such as
    # "color,translation,cutout", or "none"/None (off)
    diffaugment: str | None = "auto"

    @classmethod
    def build(cls, backend_defaults: dict[str, Any], user: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        for key in list(backend_defaults) + list(user):
            if key not in names:
                import difflib

                close = difflib.get_close_matches(key, sorted(names), n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise ConfigError(f"unknown training setting {key!r}.{hint} Known: {', '.join(sorted(names))}.")
        given = {k: v for k, v in user.items() if v is not None or k == "diffaugment"}  # None: off
        cfg = cls(**{**backend_defaults, **given})
        cfg.betas = tuple(cfg.betas)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if self.steps is None and self.epochs is None:
            raise ConfigError("say how long to train: steps=N or epochs=N.")
        if self.steps is not None and (not isinstance(self.steps, int) or self.steps < 1):
            raise ConfigError(f"steps must be a positive integer, got {self.steps!r}.")
        if self.epochs is not None and self.epochs <= 0:
            raise ConfigError(f"epochs must be positive, got {self.epochs!r}.")
        if self.optimizer not in ("adam", "rmsprop"):
            raise ConfigError(f"optimizer must be 'adam' or 'rmsprop', got {self.optimizer!r}.")
        if self.schedule not in ("constant", "cosine"):
            raise ConfigError(f"schedule must be 'constant' or 'cosine', got {self.schedule!r}.")
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise ConfigError(f"precision must be auto, fp32, bf16 or fp16, got {self.precision!r}.")
        if self.batch_size < 1 or self.n_critic < 1:
            raise ConfigError("batch_size and n_critic must be at least 1.")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise ConfigError(f"ema_decay must lie in (0, 1), got {self.ema_decay!r}.")
        if self.diffaugment is not None and not isinstance(self.diffaugment, str):
            raise ConfigError(f"diffaugment must be 'auto', a policy such as 'color,translation,cutout', "
                              f"or 'none'; got {self.diffaugment!r}.")


@dataclass
class StepContext:
    """What a backend's loss needs besides the networks: the run's RNG, step and device."""

    rng: torch.Generator
    step: int
    total_steps: int
    device: torch.device
    extra: dict[str, Any] = field(default_factory=dict)


def pick_device(name: str = "auto") -> torch.device:
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The data order of one epoch: a pure function of (seed, epoch), so resume needs no state."""
    g = torch.Generator().manual_seed((seed * 1_000_003 + epoch) % (2**63))
    return torch.randperm(n, generator=g)


class Trainer:
    """Train one :class:`AdversarialAugmenter`. ``Trainer(model, steps=1000, out_dir="runs/x").fit(data)``."""

    def __init__(self, model: AdversarialAugmenter, **config: Any):
        if not isinstance(model, AdversarialAugmenter):
            raise ConfigError(f"the shared trainer trains adversarial backends, not {type(model).__name__}.")
        self.model = model
        self.cfg = TrainConfig.build(dict(type(model).train_defaults), config)
        self.rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        self.world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        self.is_main = self.rank == 0
        self.device = pick_device(self.cfg.device)
        self.out = Path(self.cfg.out_dir) if self.cfg.out_dir else None
        self.history: list[dict[str, Any]] = []
        self.step = 0
        self.prepared = False
        self.best: dict[str, Any] | None = None
        self.monitor_state: dict[str, Any] = {}
        self.diffaugment: str | None = None  # the policy this run's critic sees, once fit() resolves it

    # ---- precision -------------------------------------------------------------------------
    def _amp_dtype(self) -> torch.dtype | None:
        p = self.cfg.precision
        if p == "fp32" or (p == "auto" and self.device.type != "cuda"):
            return None
        if p == "auto":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if p == "bf16" else torch.float16

    def autocast(self):
        dtype = self._amp_dtype()
        return torch.autocast(self.device.type, dtype=dtype or torch.float32, enabled=dtype is not None)

    # ---- setup -----------------------------------------------------------------------------
    def _optimizer(self, params, lr):
        if self.cfg.optimizer == "adam":
            return torch.optim.Adam(params, lr=lr, betas=self.cfg.betas)
        return torch.optim.RMSprop(params, lr=lr)

    def _scheduler(self, opt):
        if self.cfg.schedule == "cosine":
            eta_min = opt.param_groups[0]["lr"] * self.cfg.min_lr_ratio
            return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=self.total_steps, eta_min=eta_min)
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)

    def _setup(self, data) -> None:
        m = self.model
        self.data = as_dataset(data, image_size=m.config["image_size"], channels=m.config["channels"])
        if m.config["class_names"] is None:
            m.config["class_names"] = list(self.data.class_names) if m.conditional else (
                list(self.data.class_names) if len(self.data.class_names) == 1 else None)
            m.rebuild()
        elif list(self.data.class_names) != m.class_names and (m.conditional or len(self.data.class_names) > 1):
            raise ConfigError(
                f"the data's classes {self.data.class_names} differ from the model's {m.class_names}; "
                "create the model with class_names=data.class_names, or select classes with --classes."
            )
        self.images = self.data.tensor()  # uint8 N,C,H,W in memory
        n = len(self.images)
        self.batch_size = min(self.cfg.batch_size, n)
        if self.batch_size < self.cfg.batch_size:
            warnings.warn(f"only {n} images: batch size lowered from {self.cfg.batch_size} to {n}.", stacklevel=3)
        self.labels = torch.as_tensor(self.data.labels, dtype=torch.long)
        self.batches_per_epoch = max(1, n // self.batch_size)
        if self.cfg.steps is not None:
            self.total_steps = self.cfg.steps
        else:
            self.total_steps = max(1, math.ceil(self.cfg.epochs * self.batches_per_epoch / self.cfg.n_critic))
        G, D = m.generator.to(self.device), m.discriminator.to(self.device)
        if self.world > 1 and self.cfg.sync_batchnorm:
            m._generator = G = torch.nn.SyncBatchNorm.convert_sync_batchnorm(G)
            m._discriminator = D = torch.nn.SyncBatchNorm.convert_sync_batchnorm(D)
        if self.world > 1:
            for mod in (G, D):  # every rank starts from rank 0's weights
                for t in list(mod.parameters()) + list(mod.buffers()):
                    dist.broadcast(t.data, src=0)
        self.opt_g = self._optimizer(G.parameters(), self.cfg.lr_g)
        self.opt_d = self._optimizer(D.parameters(), self.cfg.lr_d)
        self.sched_g, self.sched_d = self._scheduler(self.opt_g), self._scheduler(self.opt_d)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self._amp_dtype() == torch.float16)
        if self.cfg.ema_decay is not None:
            from torch.optim.swa_utils import AveragedModel

            m.ema = AveragedModel(G, multi_avg_fn=self._ema_update, use_buffers=True)
        else:
            m.ema = None
        gen_device = self.device if self.device.type in ("cuda", "cpu") else torch.device("cpu")
        self.rng = torch.Generator(device=gen_device).manual_seed(self.cfg.seed * 7919 + 17 + self.rank)
        grid_rng = torch.Generator().manual_seed(self.cfg.seed + 1)
        k = self.cfg.grid_size
        self.grid_labels = (torch.arange(k) % m.num_classes) if m.conditional else None
        self.grid_z = m.sample_latent(k, self.grid_labels, generator=grid_rng)

    def ema_decay_now(self) -> float:
        """EMA decay with warm-up, min(decay, (1 + t) / (10 + t)) at generator step t, so that a
        short or young run's average is not dominated by the untrained initial weights."""
        t = self.step
        return min(self.cfg.ema_decay, (1 + t) / (10 + t))

    def _ema_update(self, ema_params, params, num_averaged) -> None:
        # the step count comes from Python, not from num_averaged: no host sync on GPU
        floats = [(e, p) for e, p in zip(ema_params, params) if e.is_floating_point()]
        if floats:
            torch._foreach_lerp_([e for e, _ in floats], [p for _, p in floats], 1.0 - self.ema_decay_now())
        for e, p in zip(ema_params, params):  # counters such as num_batches_tracked are copied
            if not e.is_floating_point():
                e.copy_(p)

    # ---- data ------------------------------------------------------------------------------
    def batch(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The k-th discriminator batch of the run (this rank's share), in [-1, 1] on device."""
        epoch, pos = divmod(k, self.batches_per_epoch)
        if getattr(self, "_perm_epoch", None) != epoch:  # one permutation per epoch, not per batch
            self._perm = epoch_permutation(len(self.images), self.cfg.seed, epoch)
            self._perm_epoch = epoch
        perm = self._perm
        idx = perm[pos * self.batch_size:(pos + 1) * self.batch_size][self.rank::self.world]
        x = self.images[idx].to(self.device, non_blocking=True).float().div_(127.5).sub_(1.0)
        return x, self.labels[idx].to(self.device, non_blocking=True)

    # ---- the loop --------------------------------------------------------------------------
    def fit(self, data) -> AdversarialAugmenter:
        from tqdm.auto import tqdm

        self._setup(data)
        if self.cfg.resume:
            self.load_checkpoint()
        elif self.out is not None and (self.out / CHECKPOINT_NAME).exists():
            raise ConfigError(
                f"{self.out} already holds a run (checkpoint at step "
                f"{self._checkpoint_step(self.out / CHECKPOINT_NAME)}); pass --resume to continue it "
                "or choose a new --out folder."
            )
        if self.out is not None and self.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
        m, cfg = self.model, self.cfg
        if not self.prepared:
            m.prepare(self)
            self.prepared = True
        G, D = m.generator, m.discriminator
        G.train()
        D.train()
        aug = self._augmented_critic(D)
        critic = aug if aug is not None else D
        end = min(self.total_steps, cfg.stop_at) if cfg.stop_at else self.total_steps
        pending: list[tuple[int, torch.Tensor, torch.Tensor, dict]] = []
        bar = tqdm(total=self.total_steps, initial=self.step, disable=not (cfg.progress and self.is_main),
                   desc=f"{m.name}", unit="step", dynamic_ncols=True)
        t0 = time.perf_counter()
        try:
            while self.step < end:
                ctx = StepContext(self.rng, self.step, self.total_steps, self.device)
                if aug is not None:
                    aug.rng = ctx.rng
                labels = None
                for i in range(cfg.n_critic):
                    real, labels = self.batch(self.step * cfg.n_critic + i)
                    with self.autocast():
                        d_loss, d_logs = m.discriminator_loss(G, critic, real, labels, ctx)
                    self.opt_d.zero_grad(set_to_none=True)
                    self.scaler.scale(d_loss).backward()
                    self._sync_grads(D)
                    self.scaler.step(self.opt_d)
                    self.scaler.update()
                D.requires_grad_(False)
                try:
                    with self.autocast():
                        g_loss, g_logs = m.generator_loss(G, critic, labels, ctx)
                    self.opt_g.zero_grad(set_to_none=True)
                    self.scaler.scale(g_loss).backward()
                finally:
                    D.requires_grad_(True)
                self._sync_grads(G)
                self.scaler.step(self.opt_g)
                self.scaler.update()
                self._sync_buffers(G, D)
                self.sched_g.step()
                self.sched_d.step()
                if m.ema is not None:
                    m.ema.update_parameters(G)
                self.step += 1
                bar.update(1)
                pending.append((self.step, d_loss.detach(), g_loss.detach(), {**d_logs, **g_logs}))
                boundary = self.step == end
                if self.step % cfg.log_every == 0 or boundary or self._due(cfg.checkpoint_every) or self._due(cfg.sample_every):
                    self._flush(pending, bar, time.perf_counter() - t0)
                    pending = []
                if cfg.monitor_every and self.step % cfg.monitor_every == 0:
                    self._monitor()
                if self.out is not None:
                    if self.is_main and (self._due(cfg.sample_every) or boundary):
                        self.write_grid()
                        self.write_loss_curve()
                    if self._due(cfg.checkpoint_every) or boundary:
                        self.save_checkpoint()  # every rank joins: RNG states are gathered
        finally:
            bar.close()
        # the run folder's model was written with the checkpoint at the loop's last step
        m.training_summary = self.summary()
        return m

    def _augmented_critic(self, D: torch.nn.Module) -> torch.nn.Module | None:
        """Resolve cfg.diffaugment for this data (the model wraps D), say it once, and warn when a
        resumed run's checkpoint was trained with another policy (resume is then not exact)."""
        aug = self.model.augmented_critic(D, self.cfg.diffaugment, len(self.images))
        self.diffaugment = aug.policy if aug is not None else None
        saved = getattr(self, "_checkpoint_diffaugment", self.diffaugment)
        if saved != self.diffaugment:
            warnings.warn(f"the checkpoint was trained with DiffAugment {saved or 'off'} and this run "
                          f"uses {self.diffaugment or 'off'}: training continues, but not exactly; pass "
                          f"diffaugment={saved or 'none'!r} to continue as before.", stacklevel=3)
        if self.is_main and self.cfg.progress:
            print(f"DiffAugment: {self.diffaugment or 'off'} (diffaugment={self.cfg.diffaugment!r}, "
                  f"{len(self.images)} training images)", file=sys.stderr, flush=True)
        return aug

    def _due(self, every: int) -> bool:
        return bool(every) and self.step % every == 0

    def _sync_grads(self, module: torch.nn.Module) -> None:
        """Average gradients across processes (torchrun). Done by hand rather than with DDP's
        wrapper because the gradient penalty differentiates through the critic twice, which
        DDP's reducer does not support."""
        if self.world == 1:
            return
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()

    def _sync_buffers(self, *modules: torch.nn.Module) -> None:
        """Give every rank rank 0's batch-norm statistics, as DDP's broadcast_buffers does."""
        if self.world == 1:
            return
        for mod in modules:
            for b in mod.buffers():
                dist.broadcast(b.data, src=0)

    def _flush(self, pending, bar, elapsed: float) -> None:
        """Check the buffered losses (one host sync per log interval) and log them."""
        if not pending:
            return
        losses = torch.stack([torch.stack([d.float(), g.float()]) for _, d, g, _ in pending]).cpu()
        finite = torch.isfinite(losses).all(dim=1)
        first_bad = torch.tensor([int((~finite).nonzero()[0, 0]) if not bool(finite.all()) else len(pending)])
        if self.world > 1:  # every rank stops at the same step, or none does
            dist.all_reduce(first_bad, op=dist.ReduceOp.MIN)
        if int(first_bad) < len(pending):
            bad = int(first_bad)
            step, which = pending[bad][0], "discriminator" if not torch.isfinite(losses[bad, 0]) else "generator"
            kept = (f"the last good checkpoint is {self.out / CHECKPOINT_NAME} (step "
                    f"{self._checkpoint_step(self.out / CHECKPOINT_NAME)})"
                    if self.out is not None and (self.out / CHECKPOINT_NAME).exists() else "no checkpoint was written")
            raise TrainingDiverged(
                f"the {which} loss became {losses[bad].tolist()} at step {step}; training stopped and "
                f"{kept}. Lower the learning rates, use fp32, or (WGAN-GP) raise the penalty, then --resume."
            )
        step, d, g, logs = pending[-1]
        rec = {"step": step, "d_loss": float(losses[-1, 0]), "g_loss": float(losses[-1, 1]),
               "lr_g": self.opt_g.param_groups[0]["lr"], "lr_d": self.opt_d.param_groups[0]["lr"],
               "elapsed_s": round(elapsed, 3)}
        rec.update({k: float(v) for k, v in logs.items()})
        self.history.append(rec)
        bar.set_postfix(d=f"{rec['d_loss']:.3f}", g=f"{rec['g_loss']:.3f}")
        if self.is_main and self.out is not None:
            self.out.mkdir(parents=True, exist_ok=True)
            with open(self.out / "metrics.jsonl", "a") as f:
                f.write(json.dumps(rec) + "\n")

    # ---- monitors (collapse and divergence) ------------------------------------------------
    @torch.no_grad()
    @torch.no_grad()
    def _fixed_samples(self, G: torch.nn.Module, n: int) -> torch.Tensor:
        """G's images in [-1, 1] for the first n fixed grid latents, in eval mode, on the CPU."""
        was = G.training
        G.eval()
        lb = self.grid_labels[:n].to(self.device) if self.grid_labels is not None else None
        try:
            return self.model.generate(G, self.grid_z[:n].to(self.device), lb).float().cpu()
        finally:
            G.train(was)

    def diversity(self) -> float:
        """Mean pairwise L2 distance between fixed-latent samples, in [-1, 1] pixel units per pixel.
        Falls towards 0 when the generator collapses onto a few modes."""
        x = self._fixed_samples(self.model.generator, 32).flatten(1)
        return float(torch.pdist(x).mean() / math.sqrt(x.shape[1]))

    def _monitor(self) -> None:
        st = self.monitor_state
        div = self.diversity()
        st.setdefault("diversity_first", div)
        d_losses = [r["d_loss"] for r in self.history[-max(1, self.cfg.monitor_every // self.cfg.log_every):]]
        d_now = sum(d_losses) / max(1, len(d_losses))
        worse = st.get("d_prev") is not None and abs(d_now) > abs(st["d_prev"]) * 1.05
        st["worse_count"] = st.get("worse_count", 0) + 1 if worse else 0
        st["d_prev"] = d_now
        if self.history:
            self.history[-1]["diversity"] = div
        if self.best is None or div >= self.best["diversity"]:
            self.best = {"step": self.step, "diversity": div}
            if self.out is not None:  # same decision on every rank: G and the latents agree
                self.save_checkpoint(self.out / BEST_NAME)
        problem = None
        if div < self.cfg.collapse_threshold * st["diversity_first"]:
            problem = (f"possible mode collapse at step {self.step}: sample diversity {div:.4f} is below "
                       f"{self.cfg.collapse_threshold:.0%} of its first value {st['diversity_first']:.4f}")
        elif st["worse_count"] >= self.cfg.divergence_patience:
            problem = (f"possible divergence at step {self.step}: the discriminator loss magnitude grew "
                       f"for {st['worse_count']} checks in a row (now {d_now:.4f})")
        if problem:
            st.setdefault("warnings", []).append(problem)
            if self.cfg.early_stop:
                raise TrainingDiverged(f"{problem}; stopped early. The most diverse checkpoint is {self.out / BEST_NAME if self.out else '(none)'} (step {self.best['step']}).")
            warnings.warn(problem, RuntimeWarning, stacklevel=2)

    # ---- outputs ---------------------------------------------------------------------------
    def grid_images(self) -> torch.Tensor:
        x = self._fixed_samples(self.model.sampling_module(), self.cfg.grid_size)
        return (x.clamp(-1, 1) + 1) / 2

    def write_grid(self) -> Path:
        from gan_augment.plots import save_grid

        images, nrow = self.grid_images(), int(math.sqrt(self.cfg.grid_size))
        path = self.out / "samples" / f"step_{self.step:07d}.png"
        save_grid(images, path, nrow=nrow)
        save_grid(images, self.out / "samples.png", nrow=nrow)
        return path

    def write_loss_curve(self) -> Path:
        from gan_augment.plots import save_loss_curve

        return save_loss_curve(self.history, self.out / "loss_curve.png", title=f"{self.model.name} losses")

    def summary(self) -> dict[str, Any]:
        return {
            "steps": self.step,
            "batch_size": self.batch_size,
            "images": len(self.images),
            "class_counts": self.data.class_counts(),
            "data_source": Path(self.data.source).name,
            "train_config": _jsonable(dataclasses.asdict(self.cfg)),
            "last_losses": self.history[-1] if self.history else None,
            "monitor_warnings": self.monitor_state.get("warnings", []),
            "diffaugment": self.diffaugment,
        }

    def _write_model(self) -> None:
        self.model.training_summary = self.summary()
        self.model.save_pretrained(self.out, card=False)

    # ---- checkpoints -----------------------------------------------------------------------
    def _gather_rng_states(self) -> list[torch.Tensor]:
        """Every rank's noise-generator state (a collective under torchrun)."""
        state = self.rng.get_state()
        if self.world == 1:
            return [state]
        dev = self.device if dist.get_backend() == "nccl" else torch.device("cpu")
        local = state.to(dev)
        out = [torch.empty_like(local) for _ in range(self.world)]
        dist.all_gather(out, local)
        return [t.cpu() for t in out]

    def save_checkpoint(self, path: Path | None = None) -> Path | None:
        """Everything needed for exact resume, in one safetensors file written atomically.
        Under torchrun every rank must call it; only rank 0 writes."""
        path = path or self.out / CHECKPOINT_NAME
        rng_states = self._gather_rng_states()
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
            "scaler": flatten_state(self.scaler.state_dict(), "scaler", tensors),
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
            "train_config": _jsonable(dataclasses.asdict(self.cfg)),
            "skeleton": skeleton,
            "best": self.best,
            "monitor_state": self.monitor_state,
            "ema": m.ema is not None,
            "world_size": self.world,
            "diffaugment": self.diffaugment,
        }
        atomic_save_safetensors(tensors, path, metadata={"trainer_state": json.dumps(state)})
        if path.name == CHECKPOINT_NAME:
            self._write_model()
        return path

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
        from gan_augment.weights import load_strict

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
        self.scaler.load_state_dict(unflatten_state(sk["scaler"], tensors))
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


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=str))
