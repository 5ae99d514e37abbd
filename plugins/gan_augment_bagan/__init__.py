"""BAGAN (Mariani et al., 2018), for class-imbalanced data, and its BAGAN-GP variant.

BAGAN starts the GAN from an autoencoder trained on every class. The minority classes can then
use what the majority classes taught the decoder. The steps:

1. ``prepare`` trains an autoencoder on all images. It has its own step budget (``ae_steps``,
   on top of the run's ``steps``; its own progress bar, and counted in the run's ETA) and its own
   seeded RNG, so a run and its resume stay identical.
2. It fits one Gaussian N(mu_k, Sigma_k) per class to the encoder's latents. The means,
   covariances and their Cholesky factors are buffers of the generator module. They are
   therefore part of ``state_dict``, of checkpoints and of saved models.
3. The generator is the decoder itself. The discriminator's convolutional body gets the encoder's
   weights, and its head has ``num_classes + 1`` outputs (the last one means "fake").
4. Adversarial training draws the fake labels uniformly over classes (class-balanced), whatever
   the data's imbalance. D learns to put real images in their class and fakes in "fake". G learns
   to make class-c fakes that D puts in class c. BAGAN-GP's critic instead scores fakes of the
   real batch's own classes (a conditional critic's per-class offset then cancels); its
   generator update still draws balanced classes.
5. To sample class k, the generator maps standard noise eps to z = mu_k + L_k eps with
   L_k L_k^T = Sigma_k, so z ~ N(mu_k, Sigma_k). This happens inside the generator, not in
   ``sample_latent``, so the trainer's fixed grid noise (drawn before the autoencoder exists)
   and its diversity monitor see the class Gaussians too.

``gp=True`` (or the ``bagan-gp`` backend) is BAGAN-GP (Huang & Jafari, 2021). The autoencoder
is label-embedded: the decoder reads z * embed(y), which spreads classes that look alike.
The discriminator becomes a Wasserstein critic with a projection head on the label. Its body
still comes from the encoder. It is trained with the gradient penalty, and the interpolates
carry the real labels.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

import gan_augment as ga


def class_gaussians(latents: torch.Tensor, labels: torch.Tensor, num_classes: int
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class mean (K, d) and unbiased covariance (K, d, d) of ``latents`` (N, d).

    A class with one latent gets zero covariance. A class with none gets the pooled statistics
    and a warning: its samples will not be class-specific.
    """
    latents = latents.double()
    d = latents.shape[1]
    means = torch.zeros(num_classes, d, dtype=torch.float64)
    covs = torch.zeros(num_classes, d, d, dtype=torch.float64)
    pooled_mean = latents.mean(0)
    pooled_cov = torch.cov(latents.T) if len(latents) > 1 else torch.zeros(d, d, dtype=torch.float64)
    for k in range(num_classes):
        zk = latents[labels == k]
        if len(zk) == 0:
            warnings.warn(f"BAGAN: class {k} has no training images; it gets the pooled latent "
                          "Gaussian, so its samples are not class-specific.", RuntimeWarning, stacklevel=2)
            means[k], covs[k] = pooled_mean, pooled_cov
            continue
        means[k] = zk.mean(0)
        if len(zk) > 1:
            covs[k] = torch.cov(zk.T)
    return means.float(), covs.float()


def stable_cholesky(cov: torch.Tensor, jitter: float = 1e-5, tries: int = 8) -> torch.Tensor:
    """Lower Cholesky factor of each (d, d) matrix in ``cov``. When a matrix is singular (a class
    with fewer images than latent dimensions), add jitter * mean variance to the diagonal,
    raising it tenfold until the factorisation succeeds."""
    out = torch.empty_like(cov)
    eye = torch.eye(cov.shape[-1], dtype=torch.float64, device=cov.device)
    for k in range(cov.shape[0]):
        c = cov[k].double()
        scale = float(c.diagonal().mean().clamp_min(1e-12))
        for t in range(tries):
            L, info = torch.linalg.cholesky_ex(c + (jitter * 10**t * scale) * eye)
            if int(info) == 0:
                break
        else:
            raise ga.TrainingDiverged(
                f"BAGAN: the latent covariance of class {k} is not positive definite even with "
                "jitter; the autoencoder probably diverged. Lower ae_lr or raise ae_steps.")
        out[k] = L.to(cov.dtype)
    return out


class BAGANGenerator(nn.Module):
    """Decoder plus the per-class latent Gaussians, kept as buffers so they travel with the weights."""

    def __init__(self, latent_dim: int, channels: int, image_size: int, width: int,
                 num_classes: int, label_embedding: bool):
        super().__init__()
        self.decoder = ga.nets.ConvGenerator(latent_dim, channels, image_size, width)
        self.label_embed = nn.Embedding(num_classes, latent_dim) if label_embedding else None
        if self.label_embed is not None:  # start near identity, so z * embed(y) ~ z
            nn.init.normal_(self.label_embed.weight, 1.0, 0.02)
        eye = torch.eye(latent_dim).expand(num_classes, -1, -1).clone()
        self.register_buffer("class_means", torch.zeros(num_classes, latent_dim))
        self.register_buffer("class_covs", eye.clone())
        self.register_buffer("class_chol", eye)

    @torch.no_grad()
    def set_class_stats(self, means: torch.Tensor, covs: torch.Tensor, jitter: float = 1e-5) -> None:
        self.class_means.copy_(means)
        self.class_covs.copy_(covs)
        self.class_chol.copy_(stable_cholesky(covs.to(self.class_chol), jitter))

    def latent(self, eps: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """z = mu_y + L_y eps: standard noise to a draw from N(mu_y, Sigma_y)."""
        return self.class_means[labels] + torch.bmm(self.class_chol[labels], eps.unsqueeze(-1)).squeeze(-1)

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.label_embed is not None:
            z = z * self.label_embed(labels)
        return self.decoder(z)

    def forward(self, eps: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.decode(self.latent(eps, labels), labels)


class BAGAN(ga.AdversarialAugmenter):
    conditional = True
    defaults = {
        "latent_dim": 128,
        "width": 64,
        "disc_norm": "layer",  # encoder/discriminator norm; layer keeps the GP variant valid
        "gp": False,  # BAGAN-GP: label-embedded autoencoder + Wasserstein critic with penalty
        "gp_weight": 10.0,
        "ae_steps": 1000,  # autoencoder updates before adversarial training
        "ae_batch_size": 64,
        "ae_lr": 1e-3,
        "ae_loss": "mse",  # mse | l1
        "cov_jitter": 1e-5,  # added (times the mean variance) when a class covariance is singular
    }
    train_defaults = {"lr_g": 2e-4, "lr_d": 2e-4, "betas": (0.5, 0.999), "n_critic": 1}
    test_config = {"width": 8, "latent_dim": 16, "ae_steps": 5, "ae_batch_size": 8}

    def __init__(self, **config):
        super().__init__(**config)
        c = self.config
        if c["ae_loss"] not in ("mse", "l1"):
            raise ga.ConfigError(f"ae_loss must be 'mse' or 'l1', got {c['ae_loss']!r}.")
        if not isinstance(c["ae_steps"], int) or c["ae_steps"] < 0:
            raise ga.ConfigError(f"ae_steps must be a non-negative integer, got {c['ae_steps']!r}.")
        if c["gp"] and c["disc_norm"] == "batch":
            raise ga.ConfigError("disc_norm='batch' breaks the per-sample gradient penalty of "
                                 "BAGAN-GP; use 'layer' or 'none'.")
        self.ae_history: list[float] = []
        #: the autoencoder's encoder after ``prepare`` (not saved: sampling does not need it)
        self.encoder: nn.Module | None = None

    @property
    def uses_double_backward(self) -> bool:
        """BAGAN-GP's gradient penalty differentiates through D twice."""
        return bool(self.config["gp"])

    # ---- networks ------------------------------------------------------------------------
    def build_generator(self):
        c = self.config
        return BAGANGenerator(c["latent_dim"], c["channels"], c["image_size"], c["width"],
                              self.num_classes, label_embedding=c["gp"])

    def build_discriminator(self):
        c = self.config
        k = self.num_classes
        if c["gp"]:
            return ga.nets.ConvDiscriminator(c["channels"], c["image_size"], c["width"],
                                             norm=c["disc_norm"], out_dim=1, num_classes=k)
        return ga.nets.ConvDiscriminator(c["channels"], c["image_size"], c["width"],
                                         norm=c["disc_norm"], out_dim=k + 1)

    def build_encoder(self) -> nn.Module:
        """Same convolutional body as the discriminator, so its weights can start D."""
        c = self.config
        return ga.nets.ConvDiscriminator(c["channels"], c["image_size"], c["width"],
                                         norm=c["disc_norm"], out_dim=c["latent_dim"])

    # ---- stage 1: autoencoder and class Gaussians -----------------------------------------
    @property
    def prepare_steps(self) -> int:
        """The autoencoder's updates, which run before the ``--steps`` adversarial steps."""
        return self.config["ae_steps"]

    def prepare(self, ctx) -> None:
        """The autoencoder stage; ``ctx`` is the trainer's stage handle (ga.PrepareContext)."""
        c = self.config
        dev = ctx.device
        G, D = self.generator, self.discriminator
        enc = self.build_encoder().to(dev)
        rng = torch.Generator().manual_seed(ctx.seed * 1_000_003 + 4242)
        params = list(enc.parameters()) + list(G.decoder.parameters())
        if G.label_embed is not None:
            params += list(G.label_embed.parameters())
        opt = torch.optim.Adam(params, lr=c["ae_lr"], betas=(0.5, 0.999))
        images, labels = ctx.images, ctx.labels
        n = len(images)
        bs = min(c["ae_batch_size"], n)
        rec_loss = F.mse_loss if c["ae_loss"] == "mse" else F.l1_loss
        enc.train()
        G.train()
        losses = []  # kept on the device: one host sync after the stage, not one per step
        for _ in ctx.steps(c["ae_steps"], "autoencoder"):  # its own bar; the run's bar counts it
            idx = torch.randint(0, n, (bs,), generator=rng)
            x = images[idx].to(dev).float().div_(127.5).sub_(1.0)
            y = labels[idx].to(dev)
            loss = rec_loss(G.decode(enc(x), y), x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.detach())
        self.ae_history = torch.stack(losses).cpu().tolist() if losses else []
        latents = self.encode_all(enc, images, dev)
        means, covs = class_gaussians(latents, labels, self.num_classes)
        G.set_class_stats(means.to(dev), covs.to(dev), c["cov_jitter"])
        D.features.load_state_dict(enc.features.state_dict())
        self.encoder = enc
        ctx.broadcast(G, D)  # under torchrun every rank continues from rank 0's autoencoder

    @staticmethod
    @torch.no_grad()
    def encode_all(enc: nn.Module, images: torch.Tensor, device, batch_size: int = 256) -> torch.Tensor:
        """Encoder latents (N, d) of uint8 images, in eval mode, on the CPU."""
        was = enc.training
        enc.eval()
        out = [enc(images[i:i + batch_size].to(device).float().div_(127.5).sub_(1.0)).float().cpu()
               for i in range(0, len(images), batch_size)]
        enc.train(was)
        return torch.cat(out)

    # ---- stage 2: adversarial training -----------------------------------------------------
    def _balanced_labels(self, n: int, ctx, device) -> torch.Tensor:
        return torch.randint(0, self.num_classes, (n,), generator=ctx.rng, device=ctx.rng.device).to(device)

    def discriminator_loss(self, G, D, real, labels, ctx):
        n = real.shape[0]
        # BAGAN-GP's critic is conditional: it scores fakes of the real batch's own classes, so a
        # per-class offset of its score cancels in E[D(fake)] - E[D(real)]. With balanced fake
        # labels against imbalanced real ones, nothing (the penalty constrains only gradients in
        # x) bounded those offsets, and the Wasserstein estimate grew without limit (12 to 1,574
        # in 1,200 steps on the PBC hard setting, penalty near 0.1). The generator still draws
        # balanced classes.
        fake_labels = labels if self.config["gp"] else self._balanced_labels(n, ctx, real.device)
        fake = self.fake_batch(G, fake_labels, ctx, grad=False)
        if self.config["gp"]:
            real_scores, fake_scores = ga.losses.critic_scores(D, real, fake, labels, fake_labels,
                                                               fuse=ctx.fuse_critic)
            wloss = ga.losses.wasserstein_critic_loss(real_scores, fake_scores)
            gp = ga.losses.gradient_penalty(D, real, fake, ctx.rng, labels=labels)
            return wloss + self.config["gp_weight"] * gp, {"wasserstein": (-wloss).detach(), "gp": gp.detach()}
        fake_class = torch.full((n,), self.num_classes, dtype=torch.long, device=real.device)
        real_logits, fake_logits = (s.float() for s in ga.losses.critic_scores(D, real, fake, fuse=ctx.fuse_critic))
        loss = F.cross_entropy(real_logits, labels) + F.cross_entropy(fake_logits, fake_class)
        acc = (real_logits.argmax(1) == labels).float().mean()
        return loss, {"d_real_class_acc": acc.detach()}

    def generator_loss(self, G, D, labels, ctx):
        n = labels.shape[0]
        fake_labels = self._balanced_labels(n, ctx, labels.device)
        fake = self.fake_batch(G, fake_labels, ctx)
        if self.config["gp"]:
            return ga.losses.wasserstein_generator_loss(D(fake, fake_labels)), {}
        return F.cross_entropy(D(fake).float(), fake_labels), {}


class BAGANGP(BAGAN):
    """BAGAN-GP with the WGAN-GP training settings (n_critic 5, Adam betas (0.5, 0.9))."""

    defaults = {"gp": True}
    train_defaults = {"lr_g": 2e-4, "lr_d": 2e-4, "betas": (0.5, 0.9), "n_critic": 5}

