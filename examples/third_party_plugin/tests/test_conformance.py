"""The plugin's own suite: gan-augment's conformance kit over the installed backend."""

from gan_augment.testing import parametrize_backend_checks


@parametrize_backend_checks(["mlp-lsgan"])
def test_conformance(check, tmp_path):
    check(tmp_path)
