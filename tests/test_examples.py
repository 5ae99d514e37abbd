"""The example training scripts run a few steps with the one gan-augment line on, and the line
is really the only switch: the script without it trains on real images only."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gan_augment as ga

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ["timm_train.py", "monai_train.py"]
PBC = Path("/work/shared/data/pbc_bloodcell_64.npz")
if not PBC.exists():
    PBC = ROOT.parent / "shared" / "data" / "pbc_bloodcell_64.npz"


@pytest.fixture(scope="module")
def small_pbc(tmp_path_factory):
    """A class-stratified slice of the real PBC file (kept outside the repo)."""
    if not PBC.exists():
        pytest.skip(f"PBC data not found at {PBC}")
    out = tmp_path_factory.mktemp("data") / "pbc_small.npz"
    with np.load(PBC, allow_pickle=False) as z:
        rng = np.random.default_rng(0)
        keep = []
        for split, per_class in (("train", 6), ("test", 2)):
            for c in range(len(z["class_names"])):
                rows = np.nonzero((z["split"] == split) & (z["labels"] == c))[0]
                keep += rng.choice(rows, per_class + c % 3, replace=False).tolist()  # imbalanced
        keep = np.sort(keep)
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
    assert "step 2/2" in res.stdout and "test accuracy" in res.stdout
    if name == "timm_train.py":
        assert "SyntheticMix plan" in res.stdout  # the mixer was really in the loop


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
