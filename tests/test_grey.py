"""Grey images end to end, and channels and size that follow the data.

The PBC blood-cell images converted to grey (28 px stored as (N, H, W), 32 px as (N, H, W, 1))
go through train -> save -> from_pretrained -> SyntheticMix -> the albumentations and MONAI
transforms -> the timm and MONAI example scripts, checking every shape and dtype."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import imbalanced_pbc_rows
from PIL import Image

import gan_augment as ga
from gan_augment.cli import main
from gan_augment.core.layout import match_layout
from gan_augment.gan.nets import SUPPORTED_SIZES, nearest_supported_sizes, upsampling_plan

ROOT = Path(__file__).resolve().parents[1]
PBC = ROOT.parent / "shared" / "data" / "pbc_bloodcell_64.npz"
TINY_CW = {"width": 8, "latent_dim": 16, "embed_dim": 4}
FAST = {"steps": 2, "batch_size": 8, "seed": 0, "progress": False, "grid_size": 4, "device": "cpu"}


def grey_npz(path: Path, size: int, keep_axis: bool) -> Path:
    """A class-stratified, imbalanced slice of PBC (train and test rows), turned grey and resized
    by gan_augment's one layout rule, stored as (N, H, W) or (N, H, W, 1) uint8."""
    with np.load(PBC, allow_pickle=False) as z:
        keep = imbalanced_pbc_rows(z)
        rgb = torch.from_numpy(z["images"][keep]).permute(0, 3, 1, 2)
        grey = match_layout(rgb, 1, size).permute(0, 2, 3, 1).numpy()
        images = grey if keep_axis else grey[..., 0]
        np.savez(path, images=images, labels=z["labels"][keep], class_names=z["class_names"],
                 split=z["split"][keep], source_rows=keep)
    return path


def count(path, split=None) -> int:
    with np.load(path) as z:
        return int(len(z["split"]) if split is None else (z["split"] == split).sum())


@pytest.fixture(scope="module")
def grey_data(tmp_path_factory):
    if not PBC.exists():
        pytest.skip(f"PBC data not found at {PBC}")
    d = tmp_path_factory.mktemp("grey")
    return {28: grey_npz(d / "pbc_grey_28.npz", 28, keep_axis=False),
            32: grey_npz(d / "pbc_grey_32.npz", 32, keep_axis=True)}


@pytest.fixture(scope="module")
def grey_model(grey_data, tmp_path_factory):
    """cwgan-gp created with no size, channels or classes: fit() adopts the grey 32 px data's."""
    model = ga.create("cwgan-gp", **TINY_CW)
    assert model.deferred_layout == {"image_size", "channels"}
    model.fit(ga.load_dataset(grey_data[32], split="train"), **FAST)
    assert model.deferred_layout == set()
    folder = model.save_pretrained(tmp_path_factory.mktemp("model") / "grey-cwgan")
    return model, folder


def test_the_grey_files_are_what_the_tests_claim(grey_data):
    with np.load(grey_data[28]) as z28, np.load(grey_data[32]) as z32, np.load(PBC) as z:
        assert z28["images"].shape[1:] == (28, 28) and z28["images"].dtype == np.uint8
        assert z32["images"].shape[1:] == (32, 32, 1) and z32["images"].dtype == np.uint8
        assert count(grey_data[28], "train") == 6 * 8 + 7 and count(grey_data[28]) == 55 + 2 * 8 + 7
        # each grey image is the ITU-R 601 luma of its RGB original (resizing keeps the mean), not
        # one of its channels: the stained cells' channel means differ by far more than 2 levels
        rgb = z["images"][z28["source_rows"]].astype(np.float64)
        luma = rgb @ np.array([0.299, 0.587, 0.114])
        assert np.abs(z28["images"].mean(axis=(1, 2)) - luma.mean(axis=(1, 2))).max() < 2
        assert np.abs(rgb.mean(axis=(1, 2)) - luma.mean(axis=(1, 2))[:, None]).max() > 10
        assert np.array_equal(z28["labels"], z["labels"][z28["source_rows"]])


# ---- 1. channels and size follow the data --------------------------------------------------------
def test_python_api_adopts_grey_and_size_and_saves_concrete_values(grey_model):
    model, folder = grey_model
    assert model.image_shape == (1, 32, 32)
    assert model.config["channels"] == 1 and model.config["image_size"] == 32
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["config"]["channels"] == 1 and cfg["config"]["image_size"] == 32
    assert cfg["image_shape"] == [1, 32, 32] and len(cfg["class_names"]) == 8
    with Image.open(folder / "samples.png") as im:  # the model card's grid is grey (torchvision's
        grid = np.asarray(im.convert("RGB")).astype(int)  # make_grid repeats one channel 3 times)
    assert (grid[..., 0] == grid[..., 1]).all() and (grid[..., 1] == grid[..., 2]).all()


def test_loaded_grey_model_samples_the_same_grey_images(grey_model):
    model, folder = grey_model
    loaded = ga.from_pretrained(folder)
    assert loaded.image_shape == (1, 32, 32)
    x = loaded.sample(6, labels=[0, 1, 2, 5, 6, 7], generator=torch.Generator().manual_seed(3))
    y = model.sample(6, labels=[0, 1, 2, 5, 6, 7], generator=torch.Generator().manual_seed(3))
    assert x.shape == (6, 1, 32, 32) and x.dtype == torch.float32
    assert 0 <= float(x.min()) and float(x.max()) <= 1 and float(x.std()) > 0
    assert torch.equal(x, y)


def test_cli_without_channels_or_size_trains_grey_at_the_datas_size(grey_data, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--backend", "dcgan", "--data", str(grey_data[28]), "--split", "train",
                 "--steps", "1", "--out", str(out), "--batch-size", "8", "--quiet",
                 "--opt", "width=8", "--opt", "latent_dim=8"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"data: {count(grey_data[28], 'train')} grey images 28x28 -> model 1 channel, 28 px"
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["image_shape"] == [1, 28, 28]
    assert main(["sample", "--model", str(out), "-n", "3", "--out", str(tmp_path / "s.npz")]) == 0
    with np.load(tmp_path / "s.npz") as z:
        assert z["images"].shape == (3, 28, 28, 1) and z["images"].dtype == np.uint8


def test_explicit_channels_and_size_convert_the_data(grey_data, tiny_npz, tmp_path, capsys):
    grey = ga.load_dataset(grey_data[28], split="train")
    m = ga.create("dcgan", channels=3)
    assert m.adopt_layout(grey) == \
        f"data: {len(grey)} grey images 28x28 -> model 3 channels (grey copied to RGB), 28 px"
    assert m.image_shape == (3, 28, 28)
    m = ga.create("dcgan", channels=1, image_size=8)
    assert m.adopt_layout(ga.load_dataset(tiny_npz)) == \
        "data: 48 RGB images 16x16 -> model 1 channel (converted to grey), 8 px (resized)"
    m = ga.create("dcgan")  # RGB data, nothing asked: an RGB model at the data's size
    assert m.adopt_layout(ga.load_dataset(tiny_npz)) == "data: 48 RGB images 16x16 -> model 3 channels, 16 px"
    # and the CLI: --channels 3 on grey data trains an RGB model
    out = tmp_path / "rgb"
    assert main(["train", "--backend", "dcgan", "--data", str(grey_data[28]), "--channels", "3",
                 "--image-size", "16", "--steps", "1", "--out", str(out), "--batch-size", "8", "--quiet",
                 "--opt", "width=8", "--opt", "latent_dim=8"]) == 0
    assert capsys.readouterr().err.splitlines()[0] == \
        f"data: {count(grey_data[28])} grey images 28x28 -> model 3 channels (grey copied to RGB), 16 px (resized)"
    assert ga.from_pretrained(out).sample(2).shape == (2, 3, 16, 16)


def test_create_with_a_size_still_works_and_old_configs_load(grey_data, tmp_path):
    m = ga.create("wgan-gp", image_size=64, width=8, latent_dim=8)
    assert m.image_shape == (3, 64, 64) and m.sample(2).shape == (2, 3, 64, 64)  # usable unfitted
    assert m.deferred_layout == {"channels"}
    m.fit(grey_data[32], **{**FAST, "steps": 1})  # the size asked for, the data's channels
    assert m.image_shape == (1, 64, 64) and m.sample(2).shape == (2, 1, 64, 64)
    # a config.json that lacks the two keys (written before they could follow the data) loads
    # as 64 px RGB, and its weights fix that shape: fitting it later converts the data
    old = ga.create("dcgan", image_size=64, channels=3, width=8, latent_dim=8)
    folder = old.save_pretrained(tmp_path / "old", card=False)
    cfg = json.loads((folder / "config.json").read_text())
    del cfg["config"]["image_size"], cfg["config"]["channels"]
    (folder / "config.json").write_text(json.dumps(cfg))
    loaded = ga.from_pretrained(folder)
    assert loaded.image_shape == (3, 64, 64) and loaded.deferred_layout == set()
    loaded.fit(grey_data[28], **{**FAST, "steps": 1})
    assert loaded.image_shape == (3, 64, 64)


def test_an_unfitted_model_is_provisionally_64px_rgb_until_fit_adopts_the_data(grey_data):
    m = ga.create("dcgan", width=8, latent_dim=8)
    assert m.image_shape == (3, 64, 64) and m.get_config()["channels"] == 3
    assert m.sample(1).shape == (1, 3, 64, 64)  # networks built with the provisional layout...
    m.fit(grey_data[28], **{**FAST, "steps": 1})  # ...are rebuilt for the data's
    assert m.image_shape == (1, 28, 28) and m.sample(1).shape == (1, 1, 28, 28)
    assert next(m.generator.parameters()).shape[0] == 8  # latent_dim in, as configured
    # weights loaded into a fresh model fix its layout too
    fresh = ga.create("dcgan", width=8, latent_dim=8)
    fresh.load_state_dict(ga.create("dcgan", width=8, latent_dim=8, image_size=64, channels=3).state_dict())
    assert fresh.deferred_layout == set()


def test_classwise_members_follow_the_data_too(grey_data):
    cw = ga.create("classwise", backend="dcgan", backend_config={"width": 8, "latent_dim": 8},
                   class_names=["basophil", "eosinophil"])
    ds = ga.load_dataset(grey_data[28], split="train", classes=["basophil", "eosinophil"])
    cw.fit(ds, **{**FAST, "steps": 1})
    assert cw.image_shape == (1, 28, 28)
    assert all(m.image_shape == (1, 28, 28) for m in cw.members)
    assert cw.sample(2, labels=[0, 1]).shape == (2, 1, 28, 28)


def arrays(images):
    return images, np.zeros(len(images), dtype=np.int64)


def test_unsupported_data_sizes_name_the_nearest_supported_ones(tmp_path):
    m = ga.create("dcgan", width=8)
    with pytest.raises(ga.ConfigError, match="50x50 pixels.*--image-size 48 or 56"):
        m.fit(arrays(np.zeros((4, 50, 50), np.uint8)), **FAST)
    with pytest.raises(ga.ConfigError, match="32x40 pixels, not square.*e.g. 40"):
        m.fit(arrays(np.zeros((4, 32, 40), np.uint8)), **FAST)
    # the CLI: one line, exit status 2
    np.savez(tmp_path / "odd.npz", images=np.zeros((4, 50, 50), np.uint8), labels=np.zeros(4, np.int64))
    proc = subprocess.run([sys.executable, "-m", "gan_augment", "train", "--backend", "dcgan", "--data",
                           str(tmp_path / "odd.npz"), "--steps", "1", "--out", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "gan-augment: error: the images are 50x50 pixels, a size these networks cannot make; pass "
        "--image-size 48 or 56 (image_size= in Python) to resize them."]


def test_image_folders_grey_colour_and_mixed_sizes(tmp_path):
    def png(path, size, mode):
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new(mode, (size, size), 90 if mode in ("L", "P") else (90, 20, 200)).save(path)

    png(tmp_path / "grey" / "a" / "1.png", 16, "L")
    png(tmp_path / "grey" / "b" / "2.png", 16, "P")  # a palette of greys counts as grey
    assert ga.load_dataset(tmp_path / "grey").stored_layout() == (1, [(16, 16)])
    m = ga.create("dcgan", width=8, latent_dim=8)
    m.fit(tmp_path / "grey", **{**FAST, "steps": 1})
    assert m.image_shape == (1, 16, 16)
    png(tmp_path / "mixed" / "a" / "1.png", 16, "L")
    png(tmp_path / "mixed" / "b" / "2.png", 20, "RGB")
    ds = ga.load_dataset(tmp_path / "mixed")
    assert ds.stored_layout() == (3, [(16, 16), (20, 20)])
    with pytest.raises(ga.ConfigError, match="come in 2 sizes \\(16x16, 20x20\\); pass --image-size N"):
        ga.create("dcgan").adopt_layout(ds)
    m = ga.create("dcgan", image_size=16, width=8, latent_dim=8)
    assert m.adopt_layout(ds).endswith("-> model 3 channels, 16 px (resized)")


def test_nearest_supported_sizes_are_the_neighbours_in_the_supported_set():
    for size in range(8, 300):
        near = nearest_supported_sizes(size)
        if size in SUPPORTED_SIZES:
            assert near == [] and upsampling_plan(size)
            continue
        with pytest.raises(ga.ConfigError, match=" or ".join(map(str, near))):
            upsampling_plan(size)
        lo, hi = near
        assert lo < size < hi and lo in SUPPORTED_SIZES and hi in SUPPORTED_SIZES
        assert not [s for s in SUPPORTED_SIZES if lo < s < hi]
    assert {28, 32, 64, 128} <= set(SUPPORTED_SIZES) and nearest_supported_sizes(5000) == [SUPPORTED_SIZES[-1]]


# ---- 2. the grey model in the user's pipeline ----------------------------------------------------
class GreyCells(torch.utils.data.Dataset):
    """A torchvision-style grey dataset yielding one of three forms of the same images."""

    def __init__(self, path, form):
        with np.load(path) as z:
            keep = z["split"] == "train"
            self.images = z["images"][keep].reshape(int(keep.sum()), *z["images"].shape[1:3])
            self.targets = z["labels"][keep].tolist()
            self.classes = [str(c) for c in z["class_names"]]
        self.form = form

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        img = self.images[i]
        if self.form == "tensor":
            img = torch.from_numpy(img)[None].float() / 255
        elif self.form == "pil":
            img = Image.fromarray(img)
        return img, self.targets[i]


@pytest.mark.parametrize("form", ["tensor", "numpy", "pil"])
def test_synthetic_mix_over_a_grey_dataset_keeps_its_form(grey_model, grey_data, form):
    model, folder = grey_model
    base = GreyCells(grey_data[28], form)
    mix = ga.SyntheticMix(base, ga.from_pretrained(folder), strategy="not majority", ratio=0.5)
    assert len(mix) > len(base)
    real, _ = base[0]
    for i in (len(base), len(mix) - 1):
        img, label = mix[i]
        assert type(img) is type(real) and label in range(8)
        if form == "pil":
            assert img.mode == "L" and img.size == (28, 28)
            img = np.asarray(img)
        elif form == "tensor":
            assert img.shape == (1, 28, 28) and img.dtype == torch.float32
            assert 0 <= float(img.min()) and float(img.max()) <= 1
        else:
            assert img.shape == (28, 28) and img.dtype == np.uint8
    synthetic_labels = {mix[i][1] for i in range(len(base), len(mix))}
    most = max(base.targets.count(c) for c in set(base.targets))  # "not majority": none for the largest
    assert synthetic_labels and all(base.targets.count(c) < most for c in synthetic_labels)


def test_albumentations_replaces_grey_hw_and_hw1_uint8(grey_model):
    A = pytest.importorskip("albumentations")
    from gan_augment.albumentations import GenerativeReplace

    model, folder = grey_model
    t = A.Compose([GenerativeReplace(str(folder), p=1.0)], seed=0)
    for shape in ((28, 28), (28, 28, 1), (32, 32)):
        img = np.zeros(shape, np.uint8)
        out = t(image=img, label=3)["image"]
        assert out.shape == shape and out.dtype == np.uint8 and out.any()


def test_monai_replaces_one_channel_metatensors(grey_model):
    pytest.importorskip("monai")
    from monai.data import MetaTensor

    from gan_augment.monai import META_KEY, GenerativeReplace, GenerativeReplaced

    model, folder = grey_model
    img = MetaTensor(torch.zeros(1, 32, 32), meta={"filename_or_obj": "cell.png"})
    out = GenerativeReplace(str(folder), prob=1.0)(img, 4)
    assert isinstance(out, MetaTensor) and out.shape == (1, 32, 32) and out.dtype == torch.float32
    assert out.meta[META_KEY] is True and out.meta["filename_or_obj"] == "cell.png"
    assert 0 <= float(out.min()) and float(out.max()) <= 1 and out.any()
    t = GenerativeReplaced(keys="image", augmenter=model, prob=1.0)
    t.set_random_state(0)
    d = t({"image": MetaTensor(torch.zeros(1, 28, 28, dtype=torch.uint8)), "label": 2})
    assert d["image"].shape == (1, 28, 28) and d["image"].dtype == torch.uint8 and d["is_synthetic"] is True


def run_example(script: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, str(ROOT / "examples" / script), *args], capture_output=True,
                          text=True, timeout=600, env=env, cwd=ROOT)


@pytest.mark.parametrize("script,size", [("timm_train.py", 28), ("monai_train.py", 32)])
def test_example_scripts_train_a_one_channel_network_on_grey_data(grey_model, grey_data, script, size):
    _, folder = grey_model
    res = run_example(script, "--data", str(grey_data[size]), "--model", str(folder), "--steps", "2",
                      "--batch-size", "8", "--workers", "0", "--eval-per-class", "2")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "step 2/2" in res.stdout and "test accuracy" in res.stdout
    if script == "timm_train.py":
        assert f"{size}x{size}, 1 channel(s)" in res.stdout and "SyntheticMix plan" in res.stdout


def test_the_pixel_scale_rules_invert_each_other():
    from gan_augment.core.layout import signed_to_unit, uint8_to_signed

    u8 = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    signed = uint8_to_signed(u8)
    assert signed.dtype == torch.float32 and signed.min() == -1 and signed.max() == 1
    assert torch.equal((signed_to_unit(signed) * 255).round().to(torch.uint8), u8)
    assert torch.equal(signed_to_unit(torch.tensor([-3.0, -1.0, 0.0, 1.0, 3.0])),
                       torch.tensor([0.0, 0.0, 0.5, 1.0, 1.0]))
