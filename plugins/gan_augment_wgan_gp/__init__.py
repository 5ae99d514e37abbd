"""WGAN-GP backend (Gulrajani et al., 2017): a critic without batch norm (layer norm instead, as
the paper advises, since the penalty is per sample), the gradient penalty on random interpolates
between real and fake images, and the leukemia study's settings as defaults."""

from __future__ import annotations

import gan_augment as ga


class WGANGP(ga.AdversarialAugmenter):
    conditional = False
    defaults = {
        "latent_dim": 128,
        "width": 64,
        "critic_norm": "layer",  # never batch: it breaks the per-sample gradient penalty
        "gp_weight": 10.0,  # lambda
        "drift_weight": 0.0,  # eps * D(real)^2 keeps critic scores near 0 (Karras et al.); 0 = off
    }
    train_defaults = {"lr_g": 2e-4, "lr_d": 2e-4, "betas": (0.5, 0.9), "n_critic": 5}
    uses_double_backward = True  # the gradient penalty

    def build_generator(self):
        c = self.config
        return ga.nets.ConvGenerator(c["latent_dim"], c["channels"], c["image_size"], c["width"])

    def build_discriminator(self):
        c = self.config
        if c["critic_norm"] == "batch":
            raise ga.ConfigError("critic_norm='batch' is not allowed for WGAN-GP: batch norm couples "
                                 "samples and breaks the per-sample gradient penalty; use 'layer' or 'none'.")
        return ga.nets.ConvDiscriminator(c["channels"], c["image_size"], c["width"], norm=c["critic_norm"])

    def discriminator_loss(self, G, D, real, labels, ctx):
        fake = self.fake_batch(G, labels, ctx, grad=False)
        return ga.losses.wgan_gp_critic_loss(D, real, fake, ctx.rng, gp_weight=self.config["gp_weight"],
                                             drift_weight=self.config["drift_weight"], fuse=ctx.fuse_critic)

    def generator_loss(self, G, D, labels, ctx):
        return ga.losses.wasserstein_generator_loss(D(self.fake_batch(G, labels, ctx))), {}

