"""The example training scripts run a few steps with the one gan-augment line on, and the line
is really the only switch: the script without it trains on real images only."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import imbalanced_pbc_rows

import gan_augment as ga

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ["timm_train.py", "monai_train.py"]
PBC = ROOT.parent / "shared" / "data" / "pbc_bloodcell_64.npz"  # ../shared, beside the repository


@pytest.fixture(scope="module")
def small_pbc(tmp_path_factory):
    """A class-stratified slice of the real PBC file (kept outside the repo)."""
    if not PBC.exists():
        pytest.skip(f"PBC data not found at {PBC}")
    out = tmp_path_factory.mktemp("data") / "pbc_small.npz"
    with np.load(PBC, allow_pickle=False) as z:
        keep = imbalanced_pbc_rows(z)
        np.savez(out, images=z["images"][keep], labels=z["labels"][keep], class_names=z["class_names"],
                 split=z["split"][keep])
    return out


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, small_pbc):
    if "cwgan-gp" not in ga.list_backends():
        pytest.skip("the cwgan-gp backend is not installed")
    _, names = ga.read_labels(small_pbc)
    model = ga.create("cwgan-gp", image_size=16, width=8, latent_dim=16, embed_dim=4, class_names=names)
    return model.save_pretrained(tmp_path_factory.mktemp("model") / "tiny", card=False)


def run(script: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                          timeout=600, env=env, cwd=ROOT)


MARKED = re.compile(r"^\s*[\w(].*[)\w,]\s*# gan-augment:")  # code followed by the marker


def without_marked_line(text: str) -> str:
    return "\n".join(ln for ln in text.splitlines() if not MARKED.match(ln)) + "\n"


@pytest.mark.parametrize("name", SCRIPTS)
def test_exactly_one_marked_line(name):
    text = (ROOT / "examples" / name).read_text()
    marked = [ln for ln in text.splitlines() if MARKED.match(ln)]
    assert len(marked) == 1
    assert "SyntheticMix" in marked[0] or "GenerativeReplaced(" in marked[0]
    rest = without_marked_line(text)
    assert "SyntheticMix(" not in rest and "GenerativeReplaced(" not in rest


@pytest.mark.parametrize("name", SCRIPTS)
def test_example_trains_with_the_line_on(name, small_pbc, tiny_model):
    res = run(ROOT / "examples" / name, "--data", str(small_pbc), "--model", str(tiny_model), "--steps", "2",
              "--batch-size", "8", "--workers", "0")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "step 1/2" in res.stdout and "step 2/2" in res.stdout  # progress from the first step
    assert "test accuracy" in res.stdout and "balanced accuracy" in res.stdout
    _, names = ga.read_labels(small_pbc)
    recall_line = next(ln for ln in res.stdout.splitlines() if ln.startswith("recall per class:"))
    assert all(f" {c} " in recall_line + " " for c in names)
    if name == "timm_train.py":
        assert "SyntheticMix plan" in res.stdout  # the mixer was really in the loop


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name.removesuffix(".py"), ROOT / "examples" / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", SCRIPTS)
def test_stratified_subset_takes_every_class(name):
    pick = load_script(name).stratified_subset
    labels = [0] * 10 + [1] * 5 + [2] * 3  # sorted by class, as the PBC test split is
    idx = pick(labels, 4, seed=0)
    assert np.bincount(np.asarray(labels)[idx]).tolist() == [4, 4, 3]
    assert list(idx) == sorted(set(idx.tolist()))
    assert np.array_equal(idx, pick(labels, 4, seed=0)) and not np.array_equal(idx, pick(labels, 4, seed=1))
    assert np.array_equal(pick(labels, 0), np.arange(len(labels)))


@pytest.mark.parametrize("name", SCRIPTS)
def test_evaluate_reports_balanced_accuracy_and_recall_per_class(name):
    import torch

    evaluate = load_script(name).evaluate
    target = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2])
    pred = torch.tensor([0, 0, 0, 0, 0, 1, 0, 0])  # class 0 always right, 1 half, 2 never
    logits = torch.nn.functional.one_hot(pred, 4).float()
    batch = (logits, target) if name == "timm_train.py" else {"image": logits, "label": target}
    acc, bal, recall, n = evaluate(torch.nn.Identity(), [batch], "cpu", num_classes=4)
    assert n == 8 and acc == pytest.approx(5 / 8)
    assert recall[:3] == pytest.approx([1.0, 0.5, 0.0])
    assert bal == pytest.approx(0.5)  # class 3 has no test image: left out of the mean


@pytest.mark.parametrize("name", SCRIPTS)
def test_help_shows_the_real_defaults(name):
    res = run(ROOT / "examples" / name, "--help")
    assert res.returncode == 0
    text = " ".join(res.stdout.split())
    for want in ("--steps STEPS optimiser steps (default: 2000)", "(default: 64)", "(default: 0)", "--eval-per-class"):
        assert want in text, want


@pytest.mark.slow
def test_timm_example_without_the_line_trains_on_real_images(tmp_path, small_pbc):
    script = tmp_path / "timm_plain.py"
    script.write_text(without_marked_line((ROOT / "examples" / "timm_train.py").read_text()))
    res = run(script, "--data", str(small_pbc), "--model", "unused", "--steps", "2", "--batch-size", "8",
              "--workers", "0")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "step 2/2" in res.stdout and "SyntheticMix" not in res.stdout


@pytest.mark.slow
def test_missing_model_says_how_to_get_one():
    res = run(ROOT / "examples" / "timm_train.py", "--steps", "1")
    assert res.returncode == 2 and "gan-augment train" in res.stderr and "--model" in res.stderr
