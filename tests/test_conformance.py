"""Every built-in backend and the class-wise wrapper pass the conformance kit."""

from gan_augment.testing import parametrize_backend_checks


@parametrize_backend_checks(["dcgan", "wgan-gp", "cwgan-gp", "bagan", "bagan-gp", "classwise",
                             ("classwise", {"backend": "dcgan", "backend_config": {"width": 8, "latent_dim": 16}})])
def test_backend_conformance(check, tmp_path):
    check(tmp_path)
