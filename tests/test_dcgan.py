"""DCGAN's stabilisers do what they say: smoothing, flipping, decaying instance noise, BCE maths."""

from __future__ import annotations

import math

import pytest
import torch

import gan_augment as ga
from gan_augment.training.config import StepContext


def ctx(step=0, total=10, seed=0):
    return StepContext(torch.Generator().manual_seed(seed), step, total, torch.device("cpu"))


class ConstD(torch.nn.Module):
    """A 'discriminator' returning a fixed logit, so the BCE can be computed by hand."""

    def __init__(self, logit):
        super().__init__()
        self.logit = logit
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return torch.full((x.shape[0], 1), self.logit) + 0 * self.w


def test_one_sided_label_smoothing_sets_the_real_target():
    m = ga.create("dcgan", image_size=16, width=4, latent_dim=4, flip_prob=0.0, instance_noise=0.0, real_label=0.9)
    real = torch.zeros(6, 3, 16, 16)
    loss, _ = m.discriminator_loss(m.generator, ConstD(0.0), real, torch.zeros(6, dtype=torch.long), ctx())
    # logit 0 -> p = 0.5 for all: BCE = log 2 whatever the target, so use a non-zero logit
    loss, _ = m.discriminator_loss(m.generator, ConstD(2.0), real, torch.zeros(6, dtype=torch.long), ctx())
    p = 1 / (1 + math.exp(-2.0))
    expected = -(0.9 * math.log(p) + 0.1 * math.log(1 - p)) - math.log(1 - p)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_label_flipping_swaps_targets():
    m = ga.create("dcgan", image_size=16, width=4, latent_dim=4, flip_prob=1.0, instance_noise=0.0, real_label=1.0)
    real = torch.zeros(4, 3, 16, 16)
    loss, _ = m.discriminator_loss(m.generator, ConstD(2.0), real, torch.zeros(4, dtype=torch.long), ctx())
    p = 1 / (1 + math.exp(-2.0))
    # every target flipped: real scored against 0, fake against 1
    assert loss.item() == pytest.approx(-math.log(1 - p) - math.log(p), rel=1e-5)


def test_instance_noise_decays_linearly_to_zero():
    m = ga.create("dcgan", image_size=16, instance_noise=0.2, instance_noise_decay=0.5)
    assert m._noise_std(ctx(0, 100)) == pytest.approx(0.2)
    assert m._noise_std(ctx(25, 100)) == pytest.approx(0.1)
    assert m._noise_std(ctx(50, 100)) == 0.0 and m._noise_std(ctx(90, 100)) == 0.0
    x = torch.zeros(1000, 1, 1, 1)
    assert m._noisy(x, ctx(0, 100)).std().item() == pytest.approx(0.2, rel=0.1)


def test_generator_loss_is_non_saturating():
    m = ga.create("dcgan", image_size=16, width=4, latent_dim=4, instance_noise=0.0)
    loss, _ = m.generator_loss(m.generator, ConstD(-1.0), torch.zeros(5, dtype=torch.long), ctx())
    assert loss.item() == pytest.approx(-math.log(1 / (1 + math.exp(1.0))), rel=1e-5)


@pytest.mark.parametrize("size,channels", [(28, 1), (32, 3), (64, 3), (128, 1)])
def test_sizes_and_channels(size, channels):
    m = ga.create("dcgan", image_size=size, channels=channels, width=4, latent_dim=8)
    x = m.sample(2, generator=torch.Generator().manual_seed(0))
    assert x.shape == (2, channels, size, size) and x.dtype == torch.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert m.discriminator(x * 2 - 1).shape == (2, 1)
