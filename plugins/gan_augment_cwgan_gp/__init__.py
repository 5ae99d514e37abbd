"""Conditional WGAN-GP backend: WGAN-GP (Gulrajani et al., 2017) with the class label in both nets.

Conditioning, and why:

* Generator: a learned label embedding is concatenated with the latent (the proposal study's
  choice). It is cheap, and the generator can use the label from its first layer.
* Critic: a projection critic (Miyato & Koyama, 2018): score = w.h(x) + <embed(y), h(x)>, with
  h(x) the critic's features. We chose it over concatenating label maps to the critic's input
  because the label then acts on features the critic has already learned, which gives a
  stronger class signal for the same size, and because an auxiliary classifier
  (AC-GAN) tends to favour easily classified samples and lose diversity, which hurts augmentation.
  The projection is computed per sample, so it keeps the per-sample gradient penalty valid, which
  is also why the critic uses layer norm and not batch norm.

Fake images in a critic step carry the real batch's labels, so the critic compares the class
conditional distributions at the data's class frequencies. The gradient penalty uses those
labels as well.
"""

from __future__ import annotations

import gan_augment as ga


class ConditionalWGANGP(ga.AdversarialAugmenter):
    conditional = True
    defaults = {
        "latent_dim": 128,
        "width": 64,
        "embed_dim": 32,  # size of the generator's label embedding, concatenated with z
        "critic_norm": "layer",  # never batch: it breaks the per-sample gradient penalty
        "gp_weight": 10.0,  # lambda
        "drift_weight": 0.0,  # eps * D(real)^2 (Karras et al.); 0 = off
    }
    train_defaults = {"lr_g": 2e-4, "lr_d": 2e-4, "betas": (0.5, 0.9), "n_critic": 5}
    uses_double_backward = True  # the gradient penalty
    #: small settings the conformance kit (gan_augment.testing) uses
    test_config = {"width": 8, "latent_dim": 16, "embed_dim": 4}

    def build_generator(self):
        c = self.config
        return ga.nets.ConvGenerator(c["latent_dim"], c["channels"], c["image_size"], c["width"],
                                     num_classes=self.num_classes, embed_dim=c["embed_dim"])

    def build_discriminator(self):
        c = self.config
        if c["critic_norm"] == "batch":
            raise ga.ConfigError("critic_norm='batch' is not allowed for cwgan-gp: batch norm couples "
                                 "samples and breaks the per-sample gradient penalty; use 'layer' or 'none'.")
        return ga.nets.ConvDiscriminator(c["channels"], c["image_size"], c["width"], norm=c["critic_norm"],
                                         num_classes=self.num_classes)

    def discriminator_loss(self, G, D, real, labels, ctx):
        fake = self.fake_batch(G, labels, ctx, grad=False)
        return ga.losses.wgan_gp_critic_loss(D, real, fake, ctx.rng, labels=labels, gp_weight=self.config["gp_weight"],
                                             drift_weight=self.config["drift_weight"], fuse=ctx.fuse_critic)

    def generator_loss(self, G, D, labels, ctx):
        return ga.losses.wasserstein_generator_loss(D(self.fake_batch(G, labels, ctx), labels)), {}

