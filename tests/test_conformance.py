"""Every built-in backend and the class-wise wrapper pass the conformance kit."""

from gan_augment.testing import parametrize_backend_checks


@parametrize_backend_checks(["dcgan", "wgan-gp", "cwgan-gp", "bagan", "bagan-gp", "sngan", "sngan-uncond", "classwise",
                             ("classwise", {"backend": "dcgan", "backend_config": {"width": 8, "latent_dim": 16}})])
def test_backend_conformance(check, tmp_path):
    check(tmp_path)


# ---- the kit must fail on backends that break the contract -------------------------------------
import pytest  # noqa: E402
import torch  # noqa: E402

import gan_augment as ga  # noqa: E402
from gan_augment.testing import backend_checks  # noqa: E402

WGANGP = ga.backend_info("wgan-gp").cls
CWGANGP = ga.backend_info("cwgan-gp").cls


class GlobalNoise(WGANGP):
    """Samples from the global RNG instead of the caller's generator."""

    name = "broken-global-noise"

    def sample_latent(self, n, labels, generator=None, device=None):
        return torch.randn(n, self.config["latent_dim"])


class WrongRange(WGANGP):
    """Returns images in [-1, 1] instead of [0, 1]."""

    name = "broken-range"

    def sample(self, n, labels=None, generator=None):
        return super().sample(n, labels, generator) * 2 - 1


class DeafToLabels(CWGANGP):
    """A conditional backend that always draws class 0."""

    name = "broken-labels"

    def generate(self, G, z, labels):
        return G(z, torch.zeros_like(labels))


class UnseededStep(WGANGP):
    """Adds noise from the global RNG inside a training step, so resume cannot be exact."""

    name = "broken-resume"

    def discriminator_loss(self, G, D, real, labels, ctx):
        return super().discriminator_loss(G, D, real + 0.1 * torch.randn_like(real), labels, ctx)


@pytest.mark.parametrize("cls, failing, match", [
    (GlobalNoise, "determinism", "same generator seed"), (WrongRange, "fit_and_sample", r"outside \[0, 1\]"),
    (DeafToLabels, "labels", "labels are ignored"), (UnseededStep, "exact_resume", "exact resume"),
])
def test_the_kit_catches_a_broken_backend(cls, failing, match, tmp_path):
    checks = {c.name: c for c in backend_checks(cls)}
    with pytest.raises(AssertionError, match=match):
        checks[failing](tmp_path)


def test_cli_lists_every_builtin_backend(capsys):
    from gan_augment.cli import main

    assert main(["backends"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[1:]}
    for name in ("dcgan", "wgan-gp", "cwgan-gp", "bagan", "bagan-gp", "classwise"):
        assert name in rows, f"`gan-augment backends` does not list {name}"
    assert rows["cwgan-gp"][-1] == "yes" and rows["bagan"][-1] == "yes" and rows["dcgan"][-1] == "no"
