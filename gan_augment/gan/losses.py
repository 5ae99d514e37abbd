"""GAN losses shared by backends. Kept apart from networks so their maths can be tested alone."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, rng: torch.Generator | None = None,
                     labels: torch.Tensor | None = None, target: float = 1.0) -> torch.Tensor:
    """Gulrajani et al. (2017): E[(||grad_x D(x_hat)||_2 - target)^2] with x_hat a per-sample
    random interpolate between real and fake. Computed in float32, outside autocast."""
    n = real.shape[0]
    eps = torch.rand(n, *([1] * (real.dim() - 1)), generator=rng, device=rng.device if rng is not None else real.device)
    eps = eps.to(real.device)
    with torch.autocast(real.device.type, enabled=False):
        x_hat = (eps * real.float() + (1 - eps) * fake.detach().float()).requires_grad_(True)
        scores = critic(x_hat, labels) if labels is not None else critic(x_hat)
        (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
        return ((grad.flatten(1).norm(2, dim=1) - target) ** 2).mean()


def wasserstein_critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """The critic maximises E[D(real)] - E[D(fake)], so it minimises the negative."""
    return fake_scores.float().mean() - real_scores.float().mean()


def wasserstein_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """The generator maximises E[D(fake)]."""
    return -fake_scores.float().mean()


def wgan_gp_critic_loss(critic, real: torch.Tensor, fake: torch.Tensor, rng: torch.Generator | None = None,
                        labels: torch.Tensor | None = None, gp_weight: float = 10.0,
                        drift_weight: float = 0.0) -> tuple[torch.Tensor, dict]:
    """The WGAN-GP critic's whole loss, E[D(fake)] - E[D(real)] + lambda * GP (+ the optional
    drift term eps * E[D(real)^2]), with the Wasserstein estimate and the penalty as logs."""
    args = (labels,) if labels is not None else ()
    real_scores, fake_scores = critic(real, *args), critic(fake, *args)
    wloss = wasserstein_critic_loss(real_scores, fake_scores)
    gp = gradient_penalty(critic, real, fake, rng, labels=labels)
    loss = wloss + gp_weight * gp
    if drift_weight:
        loss = loss + drift_weight * real_scores.float().pow(2).mean()
    return loss, {"wasserstein": (-wloss).detach(), "gp": gp.detach()}


def bce_discriminator_loss(real_logits, fake_logits, real_target, fake_target) -> torch.Tensor:
    """Binary cross-entropy with per-sample targets (allows smoothing and flipping)."""
    return (F.binary_cross_entropy_with_logits(real_logits.float(), real_target)
            + F.binary_cross_entropy_with_logits(fake_logits.float(), fake_target))


def bce_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss: -log D(G(z))."""
    return F.binary_cross_entropy_with_logits(fake_logits.float(), torch.ones_like(fake_logits, dtype=torch.float32))
