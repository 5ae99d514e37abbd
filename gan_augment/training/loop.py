"""The one training loop every adversarial backend shares.

A backend supplies networks and its discriminator/generator losses; this loop owns devices,
precision, optimisers, schedules, n_critic, EMA, logging, sample grids, checkpoints, exact
resume, divergence checks and (under torchrun) gradient averaging across processes. It is
written against the ``Trainable`` protocol (trainable.py), not the base class that calls it.

Exact resume: every random draw inside a step comes from one generator whose state is saved,
and the data order is a pure function of (seed, epoch), so N steps + resume + N steps equals
2N steps straight.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from gan_augment.core.data import as_dataset
from gan_augment.core.errors import ConfigError, TrainingDiverged
from gan_augment.core.layout import signed_to_unit
from gan_augment.core.plots import save_grid, save_loss_curve
from gan_augment.gan.diffaugment import is_auto
from gan_augment.training import checkpoint as ckpt
from gan_augment.training import monitors, precision, transfer
from gan_augment.training.batches import BatchSource
from gan_augment.training.checkpoint import BEST_NAME, CHECKPOINT_NAME, jsonable
from gan_augment.training.config import StepContext, TrainConfig, noise_seed, pick_device
from gan_augment.training.distributed import (
    any_rank,
    broadcast_from_rank0,
    gather_rng_states,
    sync_buffers,
    sync_grads,
)
from gan_augment.training.ema import make_ema, warmup_decay
from gan_augment.training.interrupts import StopRequests, TrainingInterrupted
from gan_augment.training.run_identity import data_fingerprint
from gan_augment.training.stage import PrepareContext
from gan_augment.training.timing import StepTimer
from gan_augment.training.trainable import Trainable, check_trainable

logger = logging.getLogger("gan_augment.training")
#: the clock of timed checkpoints (tests replace it)
clock = time.monotonic


class Trainer:
    """Train one :class:`AdversarialAugmenter`. ``Trainer(model, steps=1000, out_dir="runs/x").fit(data)``."""

    def __init__(self, model: Trainable, **config: Any):
        check_trainable(model)
        self.model = model
        self.cfg = TrainConfig.build(dict(type(model).train_defaults), config)
        self.rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        self.world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        self.is_main = self.rank == 0
        self.device = pick_device(self.cfg.device)
        self.amp_dtype = precision.resolve_precision(self.cfg.precision, self.device)
        self.precision_note = precision.describe(self.amp_dtype, self.cfg.precision, self.device)
        self.channels_last = precision.use_channels_last(self.cfg.channels_last, self.device)
        self.out = Path(self.cfg.out_dir) if self.cfg.out_dir else None
        self.history: list[dict[str, Any]] = []
        self.step = 0
        self.prepared = False
        self.best: dict[str, Any] | None = None
        self.monitor_state: dict[str, Any] = {}
        self.diffaugment: str | None = None  # the policy this run's critic sees, once fit() resolves it
        self._resumed, self._checkpoint_diffaugment = False, None  # a resumed checkpoint's policy
        self._bar: Any = None  # the run's progress bar, once fit() opens it
        self._stop: StopRequests | None = None
        self._data_sha256: str | None = None
        #: lines printed (rank 0, stderr) once fit() has set up and checked the run, before
        #: training: the adoption step's "data: ..." line and notes, when cfg.show_data says so
        self.intro_lines: list[str] = []

    # ---- precision -------------------------------------------------------------------------
    def autocast(self):
        """The run's autocast (training/precision.py decides the dtype), or nothing for fp32."""
        return precision.autocast(self.device, self.amp_dtype)

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
        """Adopt the data, then build the run: batches, networks on the device, optimisers,
        EMA, the noise generator and the fixed grid latents."""
        self._adopt(data)
        self._networks()
        self._optimisers()
        self._noise()

    def _adopt(self, data) -> None:
        """The one adoption step (core/adoption.py), then the run's rows and batches."""
        adoption = self.model.adopt_data(data)
        self.data = adoption.data
        show = self.cfg.show_data if self.cfg.show_data is not None else (
            self.cfg.progress and adoption.layout_adopted)
        self.intro_lines = list(adoption.lines) if show else []
        self.images = self.data.tensor()  # uint8 N,C,H,W in host memory (a prepare stage reads it)
        n = len(self.images)
        self.batch_size = min(self.cfg.batch_size, n)
        if self.batch_size < self.cfg.batch_size:
            warnings.warn(f"only {n} images: batch size lowered from {self.cfg.batch_size} to {n}.", stacklevel=4)
        self.labels = torch.as_tensor(self.data.labels, dtype=torch.long)
        self.batches = BatchSource(self.images, self.labels, self.batch_size, self.cfg.seed, self.device,
                                   self.rank, self.world, channels_last=self.channels_last,
                                   class_balance=self.cfg.class_balance)
        self.batches_per_epoch = self.batches.batches_per_epoch
        logger.info("training in %s", self.precision_note)
        if self.cfg.steps is not None:
            self.total_steps = self.cfg.steps
        else:
            self.total_steps = max(1, math.ceil(self.cfg.epochs * self.batches_per_epoch / self.cfg.n_critic))

    def _networks(self) -> None:
        """The model's networks on the run's device and memory layout; under torchrun with
        SyncBatchNorm converted (handed back through ``replace_networks``), then every rank
        takes rank 0's weights. (Weights a run starts from belong here, before the broadcast.)"""
        m = self.model
        G, D = m.generator.to(self.device), m.discriminator.to(self.device)
        self.parent = transfer.start_from_parent(self)  # init_from / freeze_d; before the optimisers and EMA
        if self.channels_last:
            precision.to_channels_last(G, D)
        if self.world > 1 and self.cfg.sync_batchnorm:
            G = torch.nn.SyncBatchNorm.convert_sync_batchnorm(G)
            D = torch.nn.SyncBatchNorm.convert_sync_batchnorm(D)
            m.replace_networks(G, D)
        broadcast_from_rank0(self.world, G, D)

    def _optimisers(self) -> None:
        """Optimisers, schedules, one grad scaler per optimiser (fp16 only: each tracks its own
        network's overflows), the EMA copy and torch.compile."""
        m = self.model
        G, D = m.generator, m.discriminator
        self.opt_g = self._optimizer(G.parameters(), self.cfg.lr_g)
        self.opt_d = self._optimizer(D.parameters(), self.cfg.lr_d)
        self.sched_g, self.sched_d = self._scheduler(self.opt_g), self._scheduler(self.opt_d)
        self.scaler_d = precision.make_scaler(self.device, self.amp_dtype)
        self.scaler_g = precision.make_scaler(self.device, self.amp_dtype)
        m.attach_ema(make_ema(G, self.cfg.ema_decay, lambda: self.step) if self.cfg.ema_decay is not None else None)
        if self.cfg.compile:  # after the EMA copy, which stays an ordinary module
            G.compile()
            if not m.uses_double_backward:  # aot_autograd has no double backward
                D.compile()

    def _noise(self) -> None:
        """The in-step noise generator (its state is checkpointed) and the fixed grid latents."""
        m = self.model
        gen_device = self.device if self.device.type in ("cuda", "cpu") else torch.device("cpu")
        self.rng = torch.Generator(device=gen_device).manual_seed(noise_seed(self.cfg.seed, self.rank))
        grid_rng = torch.Generator().manual_seed(self.cfg.seed + 1)
        k = self.cfg.grid_size
        self.grid_labels = (torch.arange(k) % m.num_classes) if m.conditional else None
        self.grid_z = m.sample_latent(k, self.grid_labels, generator=grid_rng)

    def prepare_context(self) -> PrepareContext:
        """The narrow handle a backend's ``prepare`` stage gets (not the trainer)."""
        return PrepareContext(self.images, self.labels, self.device, self.cfg.seed, self.world,
                              self.stage, self.autocast)

    def ema_decay_now(self) -> float:
        """The EMA decay at this step (ema.warmup_decay)."""
        return warmup_decay(self.cfg.ema_decay, self.step)

    # ---- data ------------------------------------------------------------------------------
    def batch(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The k-th discriminator batch of the run (this rank's share), in [-1, 1] on device."""
        return self.batches(k)

    # ---- the loop --------------------------------------------------------------------------
    def fit(self, data) -> Trainable:
        from tqdm.auto import tqdm

        data = as_dataset(data)  # a path is read once
        m, cfg = self.model, self.cfg
        saved = ckpt.resume_state(self.out, m.name, list(data.class_names)) if cfg.resume else None
        self._setup(data)  # (refused above first: another run's backend or classes)
        if saved is not None:
            note = ckpt.refuse_changed_run(self.out / CHECKPOINT_NAME, saved, self._identity())
            if note:
                self._say(note)
        elif self.out is not None and (self.out / CHECKPOINT_NAME).exists():
            raise ConfigError(
                f"{self.out} already holds a run (checkpoint at step "
                f"{ckpt.checkpoint_step(self.out / CHECKPOINT_NAME)}); pass --resume to continue it "
                "or choose a new --out folder."
            )
        for line in self.intro_lines:
            self._say(line)
        if saved is not None:
            self.load_checkpoint()
            self._say(f"resuming {self.out} from step {self.step:,} of {self.total_steps:,}")
        if self.out is not None and self.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
        prep = int(m.prepare_steps or 0)  # e.g. BAGAN's autoencoder: in the bar and ETA
        bar = self._bar = tqdm(total=prep + self.total_steps, initial=self.step + (prep if self.prepared else 0),
                               disable=not (cfg.progress and self.is_main), desc=f"{m.name}", unit="step",
                               dynamic_ncols=True)
        # Ctrl-C / SIGTERM: finish the step under way, checkpoint it, then stop (needs a run folder)
        self._stop = StopRequests(enabled=self.out is not None)
        try:
            with self._stop:
                self._train_steps(bar)
        finally:
            bar.close()
            if self.channels_last:  # hand back the default layout: saved and loaded, it samples bit for bit alike
                precision.to_contiguous(m.generator, m.discriminator, *([m.ema] if m.ema is not None else []))
        # the run folder's model was written with the checkpoint at the loop's last step
        m.training_summary = self.summary()
        return m

    def _say(self, line: str) -> None:
        """A line the user must see whatever cfg.progress says (resume point, where a stop left off)."""
        logger.info(line)
        if self.is_main:
            print(line, file=sys.stderr, flush=True)

    def _train_steps(self, bar) -> None:
        m, cfg = self.model, self.cfg
        if not self.prepared:
            m.prepare(self.prepare_context())
            self.prepared = True
        G, D = m.generator, m.discriminator
        G.train()
        D.train()
        aug = self._augmented_critic(D)
        critic = aug if aug is not None else D
        end = min(self.total_steps, cfg.stop_at) if cfg.stop_at else self.total_steps
        pending: list[tuple[int, torch.Tensor, torch.Tensor, dict]] = []
        t0 = time.perf_counter()
        timer = StepTimer(self.step, end, self.device, self.precision_note)
        self._last_save = clock()
        while self.step < end:
            ctx = StepContext(self.rng, self.step, self.total_steps, self.device,
                              n_critic=cfg.n_critic, fuse_critic=cfg.fuse_critic)
            if aug is not None:
                aug.rng = ctx.rng
            d_loss, d_logs, labels = self._critic_updates(critic, ctx)
            D.requires_grad_(False)
            try:
                with self.autocast():
                    g_loss, g_logs = m.generator_loss(G, critic, labels, ctx)
                self.opt_g.zero_grad(set_to_none=True)
                self.scaler_g.scale(g_loss).backward()
            finally:
                D.requires_grad_(True)
            sync_grads(self.world, G)
            self.scaler_g.step(self.opt_g)
            self.scaler_g.update()
            sync_buffers(self.world, G, D)
            self.sched_g.step()
            self.sched_d.step()
            if m.ema is not None:
                m.ema.update_parameters(G)
            self.step += 1
            bar.update(1)
            estimate = timer.after_step(self.step)
            if estimate and cfg.progress and self.is_main:
                bar.write(f"{m.name}: {estimate}")
            pending.append((self.step, d_loss.detach(), g_loss.detach(), {**d_logs, **g_logs}))
            boundary = self.step == end
            if self.step % cfg.log_every == 0 or boundary or self._due(cfg.checkpoint_every) or self._due(cfg.sample_every):
                self._flush(pending, bar, time.perf_counter() - t0)
                pending = []
            if cfg.monitor_every and self.step % cfg.monitor_every == 0:
                self._monitor()
            # every rank stops and checkpoints at the same step
            stop, timed = any_rank(self.world, self.device, self._stop.requested is not None,
                                   self._checkpoint_time_due())
            if self.out is not None:
                if self.is_main and (self._due(cfg.sample_every) or boundary):
                    self.write_grid()
                    self.write_loss_curve()
                if self._due(cfg.checkpoint_every) or boundary or timed or stop:
                    if pending:
                        self._flush(pending, bar, time.perf_counter() - t0)
                        pending = []
                    self.save_checkpoint()  # every rank joins: RNG states are gathered
                    self._last_save = clock()
            if stop and not boundary:
                self._stopped(self._stop.requested or "SIGINT")

    def _checkpoint_time_due(self) -> bool:
        minutes = self.cfg.checkpoint_minutes
        return bool(minutes) and self.out is not None and clock() - self._last_save >= 60.0 * minutes

    def _stopped(self, signal_name: str) -> None:
        """Raise TrainingInterrupted naming the step and what is on disk (checked, not assumed)."""
        ckpt_path = self.out / CHECKPOINT_NAME if self.out is not None else None
        if ckpt_path is not None and ckpt_path.exists():
            saved = ckpt.checkpoint_step(ckpt_path)
            at = "" if saved == self.step else f" (of step {saved})"
            msg = f"stopped at step {self.step:,} ({signal_name}); checkpoint{at} at {ckpt_path}; continue with --resume"
        else:
            ckpt_path = None
            msg = f"stopped at step {self.step:,} ({signal_name}); no checkpoint was written"
        raise TrainingInterrupted(msg, self.step, ckpt_path, signal_name)

    def _augmented_critic(self, D: torch.nn.Module) -> torch.nn.Module | None:
        """Resolve cfg.diffaugment for this data (the model wraps D), say it once, and warn when a
        resumed run's checkpoint was trained with another policy (resume is then not exact).
        ``"auto"`` on resume means the checkpoint's own policy, so a run started under an older
        "auto" rule continues exactly; only a policy the user names can change it."""
        setting = self.cfg.diffaugment
        if self._resumed and is_auto(setting):
            setting = self._checkpoint_diffaugment or "none"
        aug = self.model.augmented_critic(D, setting, len(self.images))
        self.diffaugment = aug.policy if aug is not None else None
        saved = self._checkpoint_diffaugment if self._resumed else self.diffaugment
        if saved != self.diffaugment:
            warnings.warn(f"the checkpoint was trained with DiffAugment {saved or 'off'} and this run "
                          f"uses {self.diffaugment or 'off'}: training continues, but not exactly; pass "
                          f"diffaugment={saved or 'none'!r} to continue as before.", stacklevel=3)
        if self.is_main and self.cfg.progress:
            print(f"DiffAugment: {self.diffaugment or 'off'} (diffaugment={self.cfg.diffaugment!r}, "
                  f"{len(self.images)} training images)", file=sys.stderr, flush=True)
        return aug

    def stage(self, steps: int, what: str) -> Iterator[int]:
        """``range(steps)`` for a backend's ``prepare``, shown as its own progress bar (``bagan
        autoencoder``) under the run's bar, which counts these steps too, so its ETA includes them."""
        from tqdm.auto import tqdm

        run_bar, stop = self._bar, self._stop
        with tqdm(total=steps, desc=f"{self.model.name} {what}", unit="step", position=1, leave=True,
                  disable=not (self.cfg.progress and self.is_main), dynamic_ncols=True) as bar:
            for i in range(steps):
                if stop is not None and stop.requested:  # a half-done stage is not checkpointed
                    self._stopped(stop.requested)
                yield i
                bar.update(1)
                if run_bar is not None:
                    run_bar.update(1)

    def _critic_updates(self, critic: torch.nn.Module, ctx: StepContext) -> tuple[torch.Tensor, dict, torch.Tensor]:
        """The step's n_critic discriminator updates of ``critic`` (D, or D behind DiffAugment);
        returns the last loss, its logs and the last real batch's labels (the generator update
        uses them)."""
        m, G, D = self.model, self.model.generator, self.model.discriminator
        for i in range(self.cfg.n_critic):
            ctx.critic_step = i
            real, labels = self.batch(self.step * self.cfg.n_critic + i)
            with self.autocast():
                d_loss, d_logs = m.discriminator_loss(G, critic, real, labels, ctx)
            self.opt_d.zero_grad(set_to_none=True)
            self.scaler_d.scale(d_loss).backward()
            sync_grads(self.world, D)
            self.scaler_d.step(self.opt_d)
            self.scaler_d.update()
        return d_loss, d_logs, labels

    def _due(self, every: int) -> bool:
        return bool(every) and self.step % every == 0

    def _flush(self, pending, bar, elapsed: float) -> None:
        """Check the buffered losses (one host sync per log interval) and log them."""
        if not pending:
            return
        losses = torch.stack([torch.stack([d.float(), g.float()]) for _, d, g, _ in pending]).cpu()
        bad = monitors.first_non_finite(losses, self.world)  # the same row on every rank
        if bad < len(pending):
            step, which = pending[bad][0], "discriminator" if not torch.isfinite(losses[bad, 0]) else "generator"
            kept = (f"the last good checkpoint is {self.out / CHECKPOINT_NAME} (step "
                    f"{ckpt.checkpoint_step(self.out / CHECKPOINT_NAME)})"
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

    # ---- outputs ---------------------------------------------------------------------------
    def grid_images(self) -> torch.Tensor:
        return signed_to_unit(self._fixed_samples(self.model.sampling_module(), self.cfg.grid_size))

    def write_grid(self) -> Path:
        images, nrow = self.grid_images(), int(math.sqrt(self.cfg.grid_size))
        path = self.out / "samples" / f"step_{self.step:07d}.png"
        save_grid(images, path, nrow=nrow)
        save_grid(images, self.out / "samples.png", nrow=nrow)
        return path

    def write_loss_curve(self) -> Path:
        return save_loss_curve(self.history, self.out / "loss_curve.png", title=f"{self.model.name} losses")

    def summary(self) -> dict[str, Any]:
        return {
            "steps": self.step,
            "batch_size": self.batch_size,
            "images": len(self.images),
            "class_counts": self.data.class_counts(),
            "data_source": Path(self.data.source).name,
            "train_config": jsonable(dataclasses.asdict(self.cfg)),
            "precision": self.precision_note,
            "last_losses": self.history[-1] if self.history else None,
            "monitor_warnings": self.monitor_state.get("warnings", []),
            "diffaugment": self.diffaugment,
            **({"parent": self.parent} if getattr(self, "parent", None) else {}),  # training/transfer.py
        }

    def _write_model(self) -> None:
        self.model.training_summary = self.summary()
        self.model.save_pretrained(self.out, card=False)

    # ---- checkpoints (checkpoint.py writes and reads; the run's state is decided here) -------
    @property
    def data_sha256(self) -> str:
        """Fingerprint of the rows this run trains on (computed once)."""
        if self._data_sha256 is None:
            self._data_sha256 = data_fingerprint(self.images, self.labels)
        return self._data_sha256

    def _identity(self) -> dict[str, Any]:
        """What makes this run the same run (resume refuses a change of any of it)."""
        return {"data_classes": list(self.data.class_names), "model_config": self.model.get_config(),
                "data_sha256": self.data_sha256}

    def _parts(self, saving: bool) -> dict[str, Any]:
        """The stateful parts a checkpoint holds; a constant schedule has nothing to save."""
        cosine = self.cfg.schedule == "cosine" or not saving
        return {"opt_g": self.opt_g, "opt_d": self.opt_d,
                "sched_g": self.sched_g if cosine else None, "sched_d": self.sched_d if cosine else None,
                "scaler_d": self.scaler_d, "scaler_g": self.scaler_g}

    def save_checkpoint(self, path: Path | None = None) -> Path | None:
        """Everything needed for exact resume, in one safetensors file written atomically.
        Under torchrun every rank must call it; only rank 0 writes."""
        path = path or self.out / CHECKPOINT_NAME
        rng_states = gather_rng_states(self.rng, self.world, self.device)
        if not self.is_main:
            return None
        state = {"step": self.step, "total_steps": self.total_steps, "prepared": self.prepared,
                 "backend": self.model.name, "model_config": self.model.get_config(),
                 "train_config": jsonable(dataclasses.asdict(self.cfg)), "best": self.best,
                 "monitor_state": self.monitor_state, "world_size": self.world,
                 "diffaugment": self.diffaugment, **self._identity()}
        ckpt.write_checkpoint(path, self.model, self._parts(saving=True), rng_states, state)
        if path.name == CHECKPOINT_NAME:
            self._write_model()
        return path

    def load_checkpoint(self) -> None:
        """Continue the run folder's checkpoint: networks, parts, RNG, step and monitors."""
        path = self.out / CHECKPOINT_NAME
        state, rng_state = ckpt.load_checkpoint(path, self.model, self._parts(saving=False), self.rank, self.world)
        for opt in (self.opt_g, self.opt_d):  # channels_last parameters: same layout for the state
            precision.match_param_layout(opt)
        self.step = int(state["step"])
        if rng_state is not None:
            self.rng.set_state(rng_state)
        else:
            warnings.warn(f"{path} was written by {state.get('world_size', 1)} process(es) and this run has "
                          f"{self.world}: training continues, but not bit-exactly.", stacklevel=2)
            self.rng.manual_seed(noise_seed(self.cfg.seed, self.rank, self.step))
        self.prepared = bool(state.get("prepared", True))
        self.best = state.get("best")
        self.monitor_state = state.get("monitor_state") or {}
        self._resumed, self._checkpoint_diffaugment = True, state.get("diffaugment")
        self.history = ckpt.kept_history(self.out / "metrics.jsonl", self.step, rewrite=self.is_main)

    # ---- monitors (monitors.py decides; the trainer saves the best and warns or stops) ------
    def _fixed_samples(self, G: torch.nn.Module, n: int) -> torch.Tensor:
        labels = self.grid_labels[:n] if self.grid_labels is not None else None
        return monitors.fixed_samples(self.model, G, self.grid_z[:n], labels, self.device, self.autocast())

    def diversity(self) -> float:
        """Sample diversity of the generator on 32 fixed latents (monitors.diversity)."""
        return monitors.diversity(self._fixed_samples(self.model.generator, 32))

    def _monitor(self) -> None:
        div = self.diversity()
        problem = monitors.check_health(self.monitor_state, self.history, div, self.step, self.cfg)
        if monitors.is_best(self.best, div):
            self.best = {"step": self.step, "diversity": div}
            if self.out is not None:  # same decision on every rank: G and the latents agree
                self.save_checkpoint(self.out / BEST_NAME)
        if problem:
            self.monitor_state.setdefault("warnings", []).append(problem)
            if self.cfg.early_stop:
                best = self.out / BEST_NAME if self.out else "(none)"
                raise TrainingDiverged(f"{problem}; stopped early. The most diverse checkpoint is {best} "
                                       f"(step {self.best['step']}).")
            warnings.warn(problem, RuntimeWarning, stacklevel=2)
