"""GAN losses shared by backends. Kept apart from networks so their maths can be tested alone."""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn


def per_sample(critic: nn.Module) -> bool:
    """True when the critic scores each sample on its own (no batch norm couples the batch), so
    real and fake can share one forward pass without changing the maths."""
    return not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in critic.modules())


def critic_scores(critic, real: torch.Tensor, fake: torch.Tensor, real_labels: torch.Tensor | None = None,
                  fake_labels: torch.Tensor | None = None, fuse: bool = False
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """(D(real), D(fake)); with ``fuse`` and a per-sample critic in one batched forward pass
    (fewer, larger kernels: measured not faster on a 2-core CPU, see docs/performance.md)."""
    conditional = real_labels is not None
    if fuse and per_sample(critic):
        x = torch.cat([real, fake.to(real.dtype)])
        scores = critic(x, torch.cat([real_labels, fake_labels])) if conditional else critic(x)
        return scores[:len(real)], scores[len(real):]
    if conditional:
        return critic(real, real_labels), critic(fake, fake_labels)
    return critic(real), critic(fake)


def _fp16_autocast(device_type: str) -> bool:
    get_dtype = getattr(torch, "get_autocast_dtype", None)  # torch >= 2.4
    if get_dtype is None:
        return torch.is_autocast_enabled()  # older torch: assume the GPU's fp16 default
    return torch.is_autocast_enabled(device_type) and get_dtype(device_type) == torch.float16


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, rng: torch.Generator | None = None,
                     labels: torch.Tensor | None = None, target: float = 1.0) -> torch.Tensor:
    """Gulrajani et al. (2017): E[(||grad_x D(x_hat)||_2 - target)^2] with x_hat a per-sample
    random interpolate between real and fake.

    The interpolates are float32; the critic runs under the caller's autocast (bf16 here is
    where WGAN-GP spends its time), and the norm and the loss are float32. Under fp16 the critic
    runs in float32 instead: unscaled fp16 input gradients can underflow.
    """
    n = real.shape[0]
    eps = torch.rand(n, *([1] * (real.dim() - 1)), generator=rng, device=rng.device if rng is not None else real.device)
    eps = eps.to(real.device)
    x_hat = (eps * real.float() + (1 - eps) * fake.detach().float()).requires_grad_(True)
    guard = (torch.autocast(real.device.type, enabled=False) if _fp16_autocast(real.device.type)
             else contextlib.nullcontext())
    with guard:
        scores = critic(x_hat, labels) if labels is not None else critic(x_hat)
        (grad,) = torch.autograd.grad(scores.float().sum(), x_hat, create_graph=True)
    return ((grad.float().flatten(1).norm(2, dim=1) - target) ** 2).mean()


def wasserstein_critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """The critic maximises E[D(real)] - E[D(fake)], so it minimises the negative."""
    return fake_scores.float().mean() - real_scores.float().mean()


def wasserstein_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """The generator maximises E[D(fake)]."""
    return -fake_scores.float().mean()


def wgan_gp_critic_loss(critic, real: torch.Tensor, fake: torch.Tensor, rng: torch.Generator | None = None,
                        labels: torch.Tensor | None = None, gp_weight: float = 10.0,
                        drift_weight: float = 0.0, fuse: bool = False) -> tuple[torch.Tensor, dict]:
    """The WGAN-GP critic's whole loss, E[D(fake)] - E[D(real)] + lambda * GP (+ the optional
    drift term eps * E[D(real)^2]), with the Wasserstein estimate and the penalty as logs.
    ``fuse``: real and fake in one critic forward (see :func:`critic_scores`)."""
    real_scores, fake_scores = critic_scores(critic, real, fake, labels, labels, fuse=fuse)
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


def hinge_discriminator_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Hinge loss (Lim & Ye 2017; SNGAN, BigGAN): E[max(0, 1 - D(real))] + E[max(0, 1 + D(fake))].
    Scores already beyond the margin give no gradient, so D stops pushing them further."""
    return F.relu(1.0 - real_scores.float()).mean() + F.relu(1.0 + fake_scores.float()).mean()


def hinge_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """The hinge GAN's generator loss: -E[D(G(z))]."""
    return -fake_scores.float().mean()


def r1_penalty(critic, real: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): E[||grad_x D(x)||^2] on real images only, in float32."""
    x = real.detach().float().requires_grad_(True)
    scores = critic(x, labels) if labels is not None else critic(x)
    (grad,) = torch.autograd.grad(scores.float().sum(), x, create_graph=True)
    return grad.float().flatten(1).pow(2).sum(dim=1).mean()
