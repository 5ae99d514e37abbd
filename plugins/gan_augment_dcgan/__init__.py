"""DCGAN backend (Radford et al., 2016) with the stabilisers the source studies used:
one-sided label smoothing, occasional label flipping and decaying instance noise.

Each step runs the generator forward once: the generator update scores the fakes of the step's
last discriminator update (with fresh instance noise), as the reference DCGAN loop does."""

from __future__ import annotations

import torch

import gan_augment as ga


class DCGAN(ga.AdversarialAugmenter):
    conditional = False
    defaults = {
        "latent_dim": 100,
        "width": 64,  # generator/discriminator base width (Radford: 64)
        "real_label": 0.9,  # one-sided label smoothing (Salimans et al. 2016); 1.0 turns it off
        "flip_prob": 0.03,  # chance that a sample's real/fake target is swapped for D
        "instance_noise": 0.1,  # std of Gaussian noise on D inputs, in [-1, 1] units
        "instance_noise_decay": 0.5,  # noise reaches 0 after this share of training
    }
    train_defaults = {"lr_g": 2e-4, "lr_d": 2e-4, "betas": (0.5, 0.999), "n_critic": 1}

    def build_generator(self):
        c = self.config
        return ga.nets.ConvGenerator(c["latent_dim"], c["channels"], c["image_size"], c["width"])

    def build_discriminator(self):
        c = self.config
        return ga.nets.ConvDiscriminator(c["channels"], c["image_size"], c["width"], norm="batch")

    def _noise_std(self, ctx) -> float:
        decay_steps = self.config["instance_noise_decay"] * ctx.total_steps
        if decay_steps <= 0:
            return 0.0
        return self.config["instance_noise"] * max(0.0, 1.0 - ctx.step / decay_steps)

    def _noisy(self, x, ctx):
        std = self._noise_std(ctx)
        if std <= 0:
            return x
        return x + std * torch.randn(x.shape, generator=ctx.rng, device=ctx.rng.device).to(x.device)

    def discriminator_loss(self, G, D, real, labels, ctx):
        n = real.shape[0]
        # One generator forward per step, as in Radford et al.'s reference loop: the last
        # discriminator update's fakes keep their graph, and the generator update reuses them.
        fake = self.fake_batch(G, labels, ctx, grad=ctx.last_critic_step)
        if ctx.last_critic_step:
            ctx.extra["dcgan_fake"] = fake
            fake = fake.detach()
        real_t = torch.full((n, 1), float(self.config["real_label"]), device=real.device)
        fake_t = torch.zeros(n, 1, device=real.device)
        flip = (torch.rand(n, 1, generator=ctx.rng, device=ctx.rng.device) < self.config["flip_prob"]).to(real.device)
        real_t, fake_t = torch.where(flip, fake_t, real_t), torch.where(flip, real_t, fake_t)
        loss = ga.losses.bce_discriminator_loss(D(self._noisy(real, ctx)), D(self._noisy(fake, ctx)), real_t, fake_t)
        return loss, {}

    def generator_loss(self, G, D, labels, ctx):
        fake = ctx.extra.pop("dcgan_fake", None)
        if fake is None:  # called on its own (tests, third-party loops): draw a fresh batch
            fake = self.fake_batch(G, labels, ctx)
        return ga.losses.bce_generator_loss(D(self._noisy(fake, ctx))), {}

