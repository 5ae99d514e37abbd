"""Shared fixtures: tiny real-format datasets so tests run in seconds on 2 CPU cores."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from gan_augment.training.precision import cpu_has_native_bf16 as detect_native_bf16  # never forced

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"

#: the suite's torch thread count: every test starts with it, and tests that compare two runs
#: (one of them in a subprocess) give it to both sides
THREADS = min(2, torch.get_num_threads())
#: GAN_AUGMENT_TEST_PRECISION=bf16 (or fp32) makes precision="auto" choose that format, as if the
#: CPU did (or did not) compute bf16 natively, so the bf16 paths run on AVX2 machines too
FORCED_PRECISION = os.environ.get("GAN_AUGMENT_TEST_PRECISION", "").strip().lower() or None


def pytest_configure(config):
    if FORCED_PRECISION not in (None, "bf16", "fp32"):
        raise pytest.UsageError(f"GAN_AUGMENT_TEST_PRECISION must be bf16 or fp32, got {FORCED_PRECISION!r}.")
    torch.set_num_threads(THREADS)


def pytest_report_header(config):
    forced = f"; forced to {FORCED_PRECISION} by GAN_AUGMENT_TEST_PRECISION" if FORCED_PRECISION else ""
    return (f"torch {torch.__version__}, {THREADS} threads; this CPU has native bf16: "
            f"{detect_native_bf16()}{forced}")


def auto_precision() -> str:
    """What precision="auto" resolves to on the CPU in this test session ("bf16" or "fp32"): the
    trainer's own detection, or the forced format. Tests that compare two runs pass it to both."""
    from gan_augment.training.precision import resolve_precision

    return "fp32" if resolve_precision("auto", torch.device("cpu")) is None else "bf16"


@pytest.fixture(autouse=True)
def _restore_torch_state(monkeypatch):
    """No test leaks global torch state into the next: threads, default dtype, deterministic
    algorithms, anomaly mode, grad mode and the global RNGs (torch, numpy) are put back. Under
    GAN_AUGMENT_TEST_PRECISION the hardware detection behind precision="auto" is replaced."""
    if FORCED_PRECISION is not None:
        from gan_augment.training import precision

        monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: FORCED_PRECISION == "bf16")
    saved = (torch.get_num_threads(), torch.get_default_dtype(), torch.are_deterministic_algorithms_enabled(),
             torch.is_deterministic_algorithms_warn_only_enabled(), torch.is_anomaly_enabled(),
             torch.is_grad_enabled(), torch.random.get_rng_state(), np.random.get_state())
    yield
    threads, dtype, det, warn_only, anomaly, grad, rng, np_rng = saved
    torch.set_num_threads(threads)
    torch.set_default_dtype(dtype)
    torch.use_deterministic_algorithms(det, warn_only=warn_only)
    torch.autograd.set_detect_anomaly(anomaly)
    torch.set_grad_enabled(grad)
    torch.random.set_rng_state(rng)
    np.random.set_state(np_rng)


def imbalanced_pbc_rows(z) -> np.ndarray:
    """Rows of an opened PBC .npz for a small, class-stratified, imbalanced slice: per class
    6 + c % 3 training and 2 + c % 3 test images (seed 0), sorted."""
    rng = np.random.default_rng(0)
    keep = []
    for split, per_class in (("train", 6), ("test", 2)):
        for c in range(len(z["class_names"])):
            rows = np.nonzero((z["split"] == split) & (z["labels"] == c))[0]
            keep += rng.choice(rows, per_class + c % 3, replace=False).tolist()
    return np.sort(keep)


@pytest.fixture(autouse=True)
def _own_backend_index(tmp_path_factory, monkeypatch):
    """Each test lists backends from its own index folder: tests that register plugins at run
    time never see a listing cached by another test (or by the user's own ~/.cache)."""
    monkeypatch.setenv("GAN_AUGMENT_CACHE", str(tmp_path_factory.mktemp("cache")))


def make_two_class_images(n_per_class: int = 24, size: int = 16, seed: int = 0):
    """Dark discs (class 0) and bright squares (class 1), uint8 (N, H, W, 3)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    imgs, labels = [], []
    for k in range(2):
        for _ in range(n_per_class):
            img = np.full((size, size, 3), 128, dtype=np.float32)
            c = rng.integers(size // 3, 2 * size // 3, size=2)
            r = rng.integers(size // 5, size // 3)
            if k == 0:
                mask = (yy - c[0]) ** 2 + (xx - c[1]) ** 2 <= r**2
                img[mask] = 20
            else:
                mask = (abs(yy - c[0]) <= r) & (abs(xx - c[1]) <= r)
                img[mask] = 235
            img += rng.normal(0, 5, img.shape)
            imgs.append(np.clip(img, 0, 255).astype(np.uint8))
            labels.append(k)
    return np.stack(imgs), np.array(labels, dtype=np.int64)


@pytest.fixture
def tiny_npz(tmp_path) -> Path:
    """An .npz in the shared-data format: images, labels, class_names, split."""
    images, labels = make_two_class_images()
    split = np.array(["train", "test"] * (len(labels) // 2))
    path = tmp_path / "tiny.npz"
    np.savez_compressed(path, images=images, labels=labels,
                        class_names=np.array(["disc", "square"]), split=split)
    return path


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED / "pbc_bloodcell_64.npz").exists():
        pytest.skip("../shared/data is not present")
    return SHARED


@pytest.fixture
def small_disk(tmp_path):
    """``small_disk(kib, read_only=False)``: a real filesystem that fills up, a tmpfs of that size
    mounted under tmp_path (needs root; the test is skipped with the reason otherwise)."""
    import subprocess

    mounted: list[Path] = []

    def mount(kib: int, read_only: bool = False) -> Path:
        if os.geteuid() != 0:
            pytest.skip("mounting a small tmpfs needs root")
        where = tmp_path / f"disk{len(mounted)}"
        where.mkdir()
        opts = f"size={kib}k" + (",ro" if read_only else "")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
        mounted.append(where)
        return where

    yield mount
    for where in reversed(mounted):
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


@pytest.fixture
def one_thread():
    """One torch thread for the test (put back after it by _restore_torch_state): small models
    that two threads on two shared cores only slow down."""
    torch.set_num_threads(1)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty hub folder in place of the bundled one, and an empty Hub cache."""
    from huggingface_hub import constants

    monkeypatch.setenv("GAN_AUGMENT_HUB_DIR", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf_cache"))
    return tmp_path / "hub"
