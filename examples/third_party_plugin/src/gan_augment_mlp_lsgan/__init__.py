"""mlp-lsgan: a least-squares GAN (Mao et al., 2017) with MLP generator and discriminator.

An example of a third-party gan-augment backend. It is small, but it trains for real. It
uses only the public API (``import gan_augment as ga``), and the shared trainer gives it
checkpoints, exact resume, sample grids and monitors for free.
"""

from __future__ import annotations

import torch
from torch import nn

import gan_augment as ga

__version__ = "0.1.0"


class MLPGenerator(nn.Module):
    def __init__(self, latent_dim: int, shape: tuple[int, int, int], hidden: int):
        super().__init__()
        self.shape = shape
        c, h, w = shape
        self.net = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                 nn.ReLU(), nn.Linear(hidden, c * h * w), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, *self.shape)


class MLPLSGAN(ga.AdversarialAugmenter):
    """D is trained to output 1 on real and 0 on fake; G to make D output 1 (squared errors)."""

    conditional = False
    defaults = {"latent_dim": 32, "hidden": 256}
    train_defaults = {"lr_g": 2e-4, "lr_d": 2e-4, "betas": (0.5, 0.999)}
    test_config = {"latent_dim": 8, "hidden": 32}  # what the conformance kit builds

    def build_generator(self) -> nn.Module:
        return MLPGenerator(self.config["latent_dim"], self.image_shape, self.config["hidden"])

    def build_discriminator(self) -> nn.Module:
        c, h, w = self.image_shape
        k = self.config["hidden"]
        return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, k), nn.LeakyReLU(0.2),
                             nn.Linear(k, k), nn.LeakyReLU(0.2), nn.Linear(k, 1))

    def discriminator_loss(self, G, D, real, labels, ctx):
        fake = self.fake_batch(G, labels, ctx, grad=False)  # latent from ctx.rng, then G
        loss = 0.5 * ((D(real).float() - 1) ** 2).mean() + 0.5 * (D(fake).float() ** 2).mean()
        return loss, {}

    def generator_loss(self, G, D, labels, ctx):
        return 0.5 * ((D(self.fake_batch(G, labels, ctx)).float() - 1) ** 2).mean(), {}
