"""Collapse and divergence monitors, mixed into the Trainer: a fixed-latent sample set whose
diversity falls when the generator collapses, and a watch on the discriminator loss."""

from __future__ import annotations

import math
import warnings

import torch

from gan_augment.core.errors import TrainingDiverged
from gan_augment.training.checkpoint import BEST_NAME


class MonitorMixin:
    """Needs from the Trainer: model, cfg, device, history, step, out, best, monitor_state,
    grid_z, grid_labels, autocast and save_checkpoint."""

    def _fixed_samples(self, G: torch.nn.Module, n: int) -> torch.Tensor:
        """G's images in [-1, 1] for the first n fixed grid latents, in eval mode and the run's
        precision, on the CPU."""
        was = G.training
        G.eval()
        lb = self.grid_labels[:n].to(self.device) if self.grid_labels is not None else None
        try:
            with torch.inference_mode(), self.autocast():
                x = self.model.generate(G, self.grid_z[:n].to(self.device), lb).float().cpu()
            return x.clone()  # an ordinary tensor again, usable outside inference mode
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

