"""Resume refuses a changed run with one line naming what changed; the same run resumes exactly,
and a checkpoint older than the run fingerprints still resumes (saying what it cannot check)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.torch import save_file

import gan_augment as ga
from gan_augment.cli import main
from gan_augment.core.serialization import read_safetensors, read_safetensors_metadata
from gan_augment.training.checkpoint import CHECKPOINT_NAME
from gan_augment.training.loop import Trainer
from gan_augment.training.run_identity import data_fingerprint, first_change

TINY = dict(image_size=16, width=8, latent_dim=8)
FAST = dict(batch_size=8, progress=False, sample_every=0, log_every=1, precision="fp32")


@pytest.fixture
def run(tiny_npz, tmp_path):
    """A dcgan run on the 'disc' class stopped at step 2 of 4 (CLI), and a second data file with
    the same classes but other images."""
    out = tmp_path / "run"
    assert main(["train", "--backend", "dcgan", "--data", str(tiny_npz), "--classes", "disc", "--image-size", "16",
                 "--steps", "4", "--stop-at", "2", "--batch-size", "8", "--out", str(out), "--quiet",
                 "--opt", "width=8", "--opt", "latent_dim=8"]) == 0
    z = dict(np.load(tiny_npz))
    z["images"] = 255 - z["images"]
    other = tmp_path / "other.npz"
    np.savez(other, **z)
    return out, other


RESUME = ["train", "--data", "{npz}", "--classes", "disc", "--out", "{out}", "--resume", "--quiet"]


@pytest.mark.parametrize("change,named", [
    ({"--classes": "square"}, "class names ['disc'] -> ['square']"),
    ({"--image-size": "32"}, "image size 16 -> 32"),
    ({"--channels": "1"}, "channels 3 -> 1"),
    ({"--opt": "width=16"}, "network setting width 8 -> 16"),
    ({"--data": "{other}"}, "training data (sha256 of the rows used"),
])
def test_cli_resume_of_a_changed_run_is_refused_naming_the_change(run, tiny_npz, capsys, change, named):
    out, other = run
    argv = list(RESUME)
    for flag, value in change.items():
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
    argv = [a.replace("{npz}", str(tiny_npz)).replace("{out}", str(out)).replace("{other}", str(other)) for a in argv]
    capsys.readouterr()
    assert main(argv) == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"gan-augment: error: cannot resume {out}: {named}"), lines[0]
    assert "since its checkpoint (step 2)" in lines[0] and "new --out folder" in lines[0]


def test_cli_resume_of_the_same_run_continues(run, tiny_npz, capsys):
    out, _ = run
    argv = [a.replace("{npz}", str(tiny_npz)).replace("{out}", str(out)) for a in RESUME]
    assert main([*argv, "--image-size", "16"]) == 0  # the run's own size, given again, is fine
    assert "trained dcgan for 4 steps" in capsys.readouterr().out


def test_python_resume_refuses_other_data(tiny_npz, tmp_path):
    ds = ga.load_dataset(tiny_npz, classes=["disc"])
    Trainer(ga.create("dcgan", **TINY), steps=4, stop_at=2, out_dir=str(tmp_path), **FAST).fit(ds)
    with pytest.raises(ga.ConfigError, match=r"cannot resume .*: training data \(sha256"):
        Trainer(ga.create("dcgan", **TINY), steps=4, out_dir=str(tmp_path), resume=True, **FAST).fit(ds.subset(range(5)))
    with pytest.raises(ga.ConfigError, match=r"network setting latent_dim 8 -> 16"):
        Trainer(ga.create("dcgan", **{**TINY, "latent_dim": 16}), steps=4, out_dir=str(tmp_path), resume=True,
                **FAST).fit(ds)


def test_a_checkpoint_without_fingerprints_still_resumes_and_says_so(tiny_npz, tmp_path, capsys):
    ds = ga.load_dataset(tiny_npz, classes=["disc"])
    Trainer(ga.create("dcgan", **TINY), steps=4, stop_at=2, out_dir=str(tmp_path), **FAST).fit(ds)
    path = tmp_path / CHECKPOINT_NAME
    state = json.loads(read_safetensors_metadata(path)["trainer_state"])
    for key in ("data_sha256", "data_classes"):  # what checkpoints before them lack
        state.pop(key)
    save_file(read_safetensors(path), str(path), metadata={"trainer_state": json.dumps(state)})
    capsys.readouterr()
    m = Trainer(ga.create("dcgan", **TINY), steps=4, out_dir=str(tmp_path), resume=True, **FAST).fit(ds)
    err = capsys.readouterr().err
    assert err.count("predates data fingerprints") == 1
    assert m.training_summary["steps"] == 4


def test_first_change_names_one_difference_and_skips_what_the_checkpoint_lacks():
    saved = {"data_classes": ["a"], "data_sha256": "0" * 64,
             "model_config": {"image_size": 16, "channels": 3, "width": 8, "class_names": ["a"]}}
    same = json.loads(json.dumps(saved))
    assert first_change(saved, same) is None
    assert first_change(saved, {**same, "data_sha256": "1" * 64}).startswith("training data")
    assert first_change(saved, {**same, "model_config": {**same["model_config"], "width": 9}}) == \
        "network setting width 8 -> 9"
    newer = {**same, "model_config": {**same["model_config"], "new_knob": 1}}  # unknown to the checkpoint
    assert first_change(saved, newer) is None
    assert first_change({"model_config": saved["model_config"]}, {**same, "data_classes": ["b"],
                                                                   "data_sha256": "2" * 64}) is None


def test_data_fingerprint_sees_pixels_labels_and_order():
    import torch

    x = torch.zeros(4, 3, 8, 8, dtype=torch.uint8)
    y = torch.tensor([0, 0, 1, 1])
    base = data_fingerprint(x, y)
    assert base == data_fingerprint(x.clone(), y.clone())
    x2 = x.clone()
    x2[0, 0, 0, 0] = 1
    assert len({base, data_fingerprint(x2, y), data_fingerprint(x, y.flip(0)), data_fingerprint(x[:3], y[:3])}) == 4
