"""A third party's plugin, installed the real way (pip, entry point), is found and passes the kit.

The example package is copied and pip-installed offline into a temporary target folder, which
is then put on sys.path. The venv is never touched, and the host is restored afterwards.
"""

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import gan_augment as ga
from gan_augment.core import registry
from gan_augment.testing import backend_checks

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "third_party_plugin"


@pytest.fixture
def installed_example(tmp_path, monkeypatch):
    src = tmp_path / "src_copy"
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns("*.egg-info", "build", "__pycache__"))
    target = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(target), str(src)],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    monkeypatch.syspath_prepend(str(target))  # also invalidates import caches
    importlib.invalidate_caches()
    try:
        yield registry.reset_host()
    finally:
        sys.modules.pop("gan_augment_mlp_lsgan", None)
        monkeypatch.undo()
        importlib.invalidate_caches()
        registry.reset_host()


def test_installed_plugin_is_listed_with_its_distribution(installed_example):
    info = installed_example.get("mlp-lsgan")
    assert info.distribution == "gan-augment-mlp-lsgan" and info.version == "0.1.0"
    assert info.plugin == "mlp-lsgan"  # registered under its entry-point name
    assert {"dcgan", "wgan-gp", "cwgan-gp", "bagan", "classwise", "mlp-lsgan"} <= set(ga.list_backends())


def test_installed_plugin_passes_the_conformance_kit(installed_example, tmp_path):
    checks = list(backend_checks("mlp-lsgan"))
    assert {c.name for c in checks} >= {"config", "fit_and_sample", "determinism", "save_load", "labels", "exact_resume"}
    for check in checks:
        check(tmp_path / check.name)

