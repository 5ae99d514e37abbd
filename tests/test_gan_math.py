"""The GAN maths, checked against values worked out by hand on tiny fakes."""

import importlib
import math

import numpy as np
import pytest
import torch
from torch import nn

import gan_augment as ga
from gan_augment.training.config import StepContext

bagan_mod = importlib.import_module("gan_augment_bagan")


class LinearCritic(nn.Module):
    """D(x) = w.x + b, or with labels D(x, y) = (w + e_y).x + b, whose input gradient is known."""

    def __init__(self, dim, num_classes=0):
        super().__init__()
        self.lin = nn.Linear(dim, 1)
        self.embed = nn.Embedding(num_classes, dim) if num_classes else None

    def forward(self, x, labels=None):
        h = x.flatten(1)
        out = self.lin(h)
        if self.embed is not None:
            out = out + (self.embed(labels) * h).sum(1, keepdim=True)
        return out


@pytest.mark.parametrize("scale", [0.1, 1.0, 3.0])
def test_gradient_penalty_of_a_linear_critic_is_its_analytic_value(scale):
    torch.manual_seed(0)
    critic = LinearCritic(2 * 4 * 4)
    with torch.no_grad():
        critic.lin.weight.mul_(scale / critic.lin.weight.norm())
    real, fake = torch.randn(6, 2, 4, 4), torch.randn(6, 2, 4, 4)
    gp = ga.losses.gradient_penalty(critic, real, fake, torch.Generator().manual_seed(1))
    expected = (critic.lin.weight.norm().item() - 1.0) ** 2  # grad_x D = w everywhere
    assert gp.item() == pytest.approx(expected, rel=1e-5, abs=1e-7)
    assert gp.requires_grad  # it must be trainable (create_graph=True)


def test_gradient_penalty_with_labels_uses_each_samples_class_gradient():
    torch.manual_seed(0)
    critic = LinearCritic(3 * 4 * 4, num_classes=3)
    real, fake = torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4)
    labels = torch.tensor([0, 1, 2, 1, 0])
    gp = ga.losses.gradient_penalty(critic, real, fake, torch.Generator().manual_seed(2), labels=labels)
    w, e = critic.lin.weight[0].detach(), critic.embed.weight.detach()
    expected = torch.stack([((w + e[y]).norm() - 1) ** 2 for y in labels]).mean()
    assert gp.item() == pytest.approx(expected.item(), rel=1e-5)


def test_gradient_penalty_draws_interpolates_from_the_given_generator_only():
    critic = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 1))
    real, fake = torch.randn(4, 1, 4, 4), torch.randn(4, 1, 4, 4)
    a = ga.losses.gradient_penalty(critic, real, fake, torch.Generator().manual_seed(3))
    torch.manual_seed(123)
    b = ga.losses.gradient_penalty(critic, real, fake, torch.Generator().manual_seed(3))
    c = ga.losses.gradient_penalty(critic, real, fake, torch.Generator().manual_seed(4))
    assert a.item() == b.item() and a.item() != c.item()  # non-linear critic: eps matters


def test_wasserstein_loss_signs():
    real, fake = torch.tensor([[2.0], [4.0]]), torch.tensor([[1.0], [-1.0]])
    # the critic minimises E[D(fake)] - E[D(real)]: negative when it ranks real above fake
    assert ga.losses.wasserstein_critic_loss(real, fake).item() == pytest.approx(0.0 - 3.0)
    assert ga.losses.wasserstein_generator_loss(fake).item() == pytest.approx(0.0)
    assert ga.losses.wasserstein_generator_loss(torch.tensor([[5.0]])).item() == -5.0
    # one descent step on the critic loss widens the real-fake score gap
    critic = LinearCritic(4)
    x_real, x_fake = torch.ones(8, 4), -torch.ones(8, 4)
    opt = torch.optim.SGD(critic.parameters(), lr=0.1)
    gap0 = (critic(x_real).mean() - critic(x_fake).mean()).item()
    loss = ga.losses.wasserstein_critic_loss(critic(x_real), critic(x_fake))
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert (critic(x_real).mean() - critic(x_fake).mean()).item() > gap0


def test_bce_loss_signs():
    good = ga.losses.bce_generator_loss(torch.tensor([[5.0]]))
    bad = ga.losses.bce_generator_loss(torch.tensor([[-5.0]]))
    assert good.item() < bad.item()  # G is rewarded when D calls its fakes real
    ones, zeros = torch.ones(1, 1), torch.zeros(1, 1)
    right = ga.losses.bce_discriminator_loss(torch.tensor([[5.0]]), torch.tensor([[-5.0]]), ones, zeros)
    wrong = ga.losses.bce_discriminator_loss(torch.tensor([[-5.0]]), torch.tensor([[5.0]]), ones, zeros)
    assert right.item() < wrong.item()


def _cwgan(**kw):
    return ga.create("cwgan-gp", image_size=16, channels=1, class_names=["a", "b", "c"],
                     width=8, latent_dim=8, embed_dim=4, **kw)


def test_projection_critic_adds_the_class_embedding_inner_product():
    torch.manual_seed(0)
    D = _cwgan().discriminator
    x, y = torch.randn(5, 1, 16, 16), torch.tensor([0, 1, 2, 2, 1])
    h = D.features(x)
    assert D.embed.num_embeddings == 3
    projection = (D.embed.weight[y] * h).sum(1, keepdim=True)
    torch.testing.assert_close(D(x, y), D.head(h) + projection)
    with torch.no_grad():  # changing class 2's embedding moves only class-2 scores
        before = D(x, y).clone()
        D.embed.weight[2] += 1.0
        moved = (D(x, y) - before).abs().squeeze(1) > 1e-6
    assert moved.tolist() == [False, False, True, True, False]


def test_cwgan_losses_are_wasserstein_plus_penalty_with_labels():
    torch.manual_seed(0)
    m = _cwgan(gp_weight=7.0)
    G, D = m.generator, m.discriminator
    real, labels = torch.rand(4, 1, 16, 16) * 2 - 1, torch.tensor([0, 2, 1, 2])
    ctx = StepContext(torch.Generator().manual_seed(5), 0, 10, torch.device("cpu"))
    loss, logs = m.discriminator_loss(G, D, real, labels, ctx)
    # recompute by hand with the same random stream: z, then the penalty's eps
    rng = torch.Generator().manual_seed(5)
    z = torch.randn(4, 8, generator=rng)
    with torch.no_grad():
        fake = G(z, labels)
    w = D(fake, labels).mean() - D(real, labels).mean()
    gp = ga.losses.gradient_penalty(D, real, fake, rng, labels=labels)
    assert loss.item() == pytest.approx((w + 7.0 * gp).item(), rel=1e-5)
    assert logs["wasserstein"].item() == pytest.approx(-w.item(), rel=1e-5)
    ctx = StepContext(torch.Generator().manual_seed(6), 0, 10, torch.device("cpu"))
    g_loss, _ = m.generator_loss(G, D, labels, ctx)
    z = torch.randn(4, 8, generator=torch.Generator().manual_seed(6))
    assert g_loss.item() == pytest.approx(-D(G(z, labels), labels).mean().item(), rel=1e-5)


def test_bagan_losses_put_real_in_its_class_and_fake_in_the_extra_class():
    torch.manual_seed(0)
    m = ga.create("bagan", image_size=16, channels=1, class_names=["a", "b"], width=8, latent_dim=8)
    G, D = m.generator, m.discriminator
    assert D.head.out_features == 3  # two classes + "fake"
    real, labels = torch.rand(4, 1, 16, 16) * 2 - 1, torch.tensor([0, 1, 1, 0])
    ctx = StepContext(torch.Generator().manual_seed(5), 0, 10, torch.device("cpu"))
    loss, _ = m.discriminator_loss(G, D, real, labels, ctx)
    rng = torch.Generator().manual_seed(5)
    fake_labels = torch.randint(0, 2, (4,), generator=rng)
    eps = torch.randn(4, 8, generator=rng)
    with torch.no_grad():
        fake = G(eps, fake_labels)
    ce = nn.functional.cross_entropy
    expected = ce(D(real), labels) + ce(D(fake), torch.full((4,), 2))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    ctx = StepContext(torch.Generator().manual_seed(8), 0, 10, torch.device("cpu"))
    g_loss, _ = m.generator_loss(G, D, labels, ctx)
    rng = torch.Generator().manual_seed(8)
    fake_labels = torch.randint(0, 2, (4,), generator=rng)
    eps = torch.randn(4, 8, generator=rng)
    assert g_loss.item() == pytest.approx(ce(D(G(eps, fake_labels)), fake_labels).item(), rel=1e-5)


def test_class_gaussians_are_the_mean_and_unbiased_covariance_per_class():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(40, 3)) @ rng.normal(size=(3, 3)) + rng.normal(size=3)
    y = np.array([0] * 25 + [1] * 14 + [2])
    means, covs = bagan_mod.class_gaussians(torch.tensor(z), torch.tensor(y), 3)
    for k in (0, 1):
        np.testing.assert_allclose(means[k].numpy(), z[y == k].mean(0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(covs[k].numpy(), np.cov(z[y == k], rowvar=False), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(means[2].numpy(), z[y == 2][0], rtol=1e-5)
    assert torch.count_nonzero(covs[2]) == 0  # one image: no spread
    with pytest.warns(RuntimeWarning, match="class 3 has no training images"):
        means4, _ = bagan_mod.class_gaussians(torch.tensor(z), torch.tensor(y), 4)
    np.testing.assert_allclose(means4[3].numpy(), z.mean(0), rtol=1e-5)


def test_stable_cholesky_factors_singular_covariances_with_small_jitter():
    a = torch.tensor([[1.0, 2.0], [2.0, 4.0]])  # rank 1
    full = torch.tensor([[2.0, 0.5], [0.5, 1.0]])
    L = bagan_mod.stable_cholesky(torch.stack([a, full]))
    assert torch.allclose(L[1] @ L[1].T, full, atol=1e-4)  # well-conditioned: nearly exact
    assert torch.allclose(L[0] @ L[0].T, a, atol=1e-3)  # singular: off by the jitter only
    assert torch.all(torch.tril(L) == L)


def test_bagan_generator_maps_standard_noise_to_the_class_gaussian():
    torch.manual_seed(0)
    G = bagan_mod.BAGANGenerator(3, 1, 16, 8, num_classes=2, label_embedding=False)
    means = torch.tensor([[1.0, -2.0, 0.5], [-3.0, 0.0, 2.0]])
    A = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.8, 0.0], [0.2, -0.3, 0.4]])
    covs = torch.stack([A @ A.T, torch.diag(torch.tensor([0.1, 2.0, 1.0]))])
    G.set_class_stats(means, covs)
    eps = torch.randn(200_000, 3, generator=torch.Generator().manual_seed(1))
    for k in (0, 1):
        z = G.latent(eps, torch.full((len(eps),), k)).double()
        torch.testing.assert_close(z.mean(0), means[k].double(), atol=0.02, rtol=0)
        torch.testing.assert_close(torch.cov(z.T), covs[k].double(), atol=0.03, rtol=0.02)
    assert {"class_means", "class_covs", "class_chol"} <= set(G.state_dict())


def test_bagan_class_gaussians_match_the_encoder_latents_after_the_autoencoder_stage():
    from gan_augment.testing.toy import toy_two_class_data
    from gan_augment.training.loop import Trainer

    torch.manual_seed(0)
    data = toy_two_class_data(12, 16, 1)
    m = ga.create("bagan", image_size=16, channels=1, width=8, latent_dim=6, ae_steps=20, ae_batch_size=8)
    trainer = Trainer(m, steps=1, batch_size=8, progress=False, device="cpu")
    trainer._setup(data)
    m.prepare(trainer.prepare_context())
    latents = m.encode_all(m.encoder, trainer.images, "cpu").double()
    G = m.generator
    for k in (0, 1):
        zk = latents[trainer.labels == k]
        torch.testing.assert_close(G.class_means[k].double(), zk.mean(0), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(G.class_covs[k].double(), torch.cov(zk.T), atol=1e-5, rtol=1e-4)
        chol = G.class_chol[k].double()
        scale = float(G.class_covs[k].diagonal().mean())  # L L^T = Sigma + jitter only
        assert (chol @ chol.T - G.class_covs[k].double()).abs().max() <= 1e-3 * scale
    assert not math.isclose(m.ae_history[-1], m.ae_history[0])
    assert m.ae_history[-1] < m.ae_history[0]


def test_wgan_gp_critic_loss_adds_penalty_and_drift_to_the_wasserstein_term():
    """For a linear critic D(x) = w.x the whole loss is known in closed form."""
    torch.manual_seed(0)
    critic = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 1, bias=False))
    real, fake = torch.randn(5, 3, 2, 2), torch.randn(5, 3, 2, 2)
    w = critic[1].weight.detach().flatten()
    loss, logs = ga.losses.wgan_gp_critic_loss(critic, real, fake, torch.Generator().manual_seed(1),
                                               gp_weight=10.0, drift_weight=0.01)
    d_real, d_fake = real.flatten(1) @ w, fake.flatten(1) @ w
    expected = d_fake.mean() - d_real.mean() + 10.0 * (w.norm() - 1) ** 2 + 0.01 * (d_real**2).mean()
    assert torch.allclose(loss, expected, atol=1e-5)
    assert torch.allclose(logs["wasserstein"], d_real.mean() - d_fake.mean(), atol=1e-6)
