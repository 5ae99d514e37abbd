"""Data loading: npz (the shared-data format), ImageFolder, CSV; splits, classes, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import gan_augment as ga
from gan_augment.core import data as gdata


def test_npz_split_and_classes(tiny_npz):
    ds = ga.load_dataset(tiny_npz, split="train")
    assert len(ds) == 24 and ds.class_names == ["disc", "square"]
    sq = ga.load_dataset(tiny_npz, split="test", classes=["square"])
    assert sq.class_names == ["square"] and set(sq.labels.tolist()) == {0} and len(sq) == 12
    x, y = sq[0]
    assert x.dtype == torch.uint8 and x.shape == (3, 16, 16) and y == 0


def test_resize_and_grey_conversion(tiny_npz):
    ds = ga.load_dataset(tiny_npz, image_size=32, channels=1)
    t = ds.tensor()
    assert t.shape == (48, 1, 32, 32) and t.dtype == torch.uint8
    assert torch.equal(ds[3][0], t[3])


def test_labels_are_read_without_decoding_images(tiny_npz, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("images were decoded")

    monkeypatch.setattr(gdata, "_check_image_array", boom)
    labels, names = ga.read_labels(tiny_npz, split="test")
    assert names == ["disc", "square"] and len(labels) == 24


def test_global_label_codes_map_to_the_files_class_names(tmp_path):
    # like pbc_neutrophil_64.npz: every label is 6, class_names == ['neutrophil']
    p = tmp_path / "one.npz"
    np.savez(p, images=np.zeros((4, 16, 16, 3), np.uint8), labels=np.full(4, 6), class_names=np.array(["neutrophil"]))
    ds = ga.load_dataset(p)
    assert ds.class_names == ["neutrophil"] and ds.labels.tolist() == [0, 0, 0, 0]


def test_real_neutrophil_file(shared_data):
    labels, names = ga.read_labels(shared_data / "pbc_neutrophil_64.npz", split="train")
    assert names == ["neutrophil"] and len(labels) == 3195


def test_image_folder_and_csv(tmp_path):
    root = tmp_path / "folder"
    rows = ["path,label,split"]
    for cls, value in (("benign", 30), ("malignant", 220)):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((20, 20, 3), value, np.uint8)).save(root / cls / f"{i}.png")
            rows.append(f"folder/{cls}/{i}.png,{cls},{'train' if i < 2 else 'test'}")
    ds = ga.load_dataset(root, image_size=16)
    assert ds.class_names == ["benign", "malignant"] and len(ds) == 6
    assert ds.tensor().shape == (6, 3, 16, 16) and int(ds.tensor()[5].float().mean()) == 220
    (tmp_path / "list.csv").write_text("\n".join(rows) + "\n")
    cs = ga.load_dataset(tmp_path / "list.csv", split="train", classes=["malignant"], image_size=16)
    assert len(cs) == 2 and cs.class_names == ["malignant"] and int(cs[0][0].float().mean()) == 220


@pytest.mark.parametrize("make,match", [
    (lambda p: None, "data not found"),
    (lambda p: p.write_bytes(b"PK\x03\x04 not really a zip"), "corrupted"),
    (lambda p: np.savez(p, pixels=np.zeros(3)), "no 'images' array"),
    (lambda p: np.savez(p, images=np.zeros((2, 5), np.uint8), labels=np.zeros(2)), "must be"),
    (lambda p: np.savez(p, images=np.zeros((2, 8, 8, 3), np.int32), labels=np.zeros(2)), "uint8"),
    (lambda p: np.savez(p, images=np.zeros((2, 8, 8, 3), np.uint8), labels=np.zeros(3)), "2 images but 3 labels"),
])
def test_bad_files_get_clear_errors(tmp_path, make, match):
    p = tmp_path / "bad.npz"
    make(p)
    with pytest.raises(ga.DataError, match=match):
        ga.load_dataset(p).tensor()


def test_unknown_split_and_class_are_named(tiny_npz):
    with pytest.raises(ga.DataError, match="no rows with split 'val'"):
        ga.load_dataset(tiny_npz, split="val")
    with pytest.raises(ga.DataError, match="Did you mean 'square'"):
        ga.load_dataset(tiny_npz, classes=["squre"])


def test_labels_out_of_range_are_rejected():
    with pytest.raises(ga.DataError, match="labels must lie in 0..1"):
        ga.ImageDataset(np.zeros((2, 8, 8, 3), np.uint8), np.array([0, 5]), ["a", "b"])


def test_empty_selection_is_an_error_when_used(tiny_npz):
    ds = ga.load_dataset(tiny_npz).subset([])
    with pytest.raises(ga.DataError, match="empty"):
        ds.tensor()


def test_a_dataset_is_decoded_once_per_training_size(tiny_npz):
    """Fitting twice on the same dataset must not decode and resize it twice."""
    ds = ga.load_dataset(tiny_npz)
    a = gdata.as_dataset(ds, image_size=32, channels=3)
    assert gdata.as_dataset(ds, image_size=32, channels=3) is a
    assert a.tensor() is gdata.as_dataset(ds, image_size=32, channels=3).tensor()
    assert gdata.as_dataset(ds) is ds
    assert gdata.as_dataset(ds, image_size=16, channels=1).tensor().shape == (48, 1, 16, 16)


def test_a_file_without_labels_is_one_class_only_for_unconditional_backends(tmp_path, capsys):
    from conftest import make_two_class_images

    import gan_augment as ga
    from gan_augment.cli import main

    images, _ = make_two_class_images(6)
    path = tmp_path / "images_only.npz"
    np.savez(path, images=images)
    ds = ga.load_dataset(path)
    assert ds.labelled is False and ds.class_names == ["0"]
    assert ds.subset([0, 1]).labelled is False and ga.as_dataset(ds, image_size=8).labelled is False
    assert ga.load_dataset(path.parent / "images_only.npz", classes=["0"]).labelled is False
    with pytest.raises(ga.DataError, match="no 'labels' array, and cwgan-gp is conditional"):
        ga.create("cwgan-gp", image_size=16, width=8).adopt_layout(ds)
    assert ga.create("dcgan", width=8).adopt_layout(ds).endswith("; no labels: one class")
    assert main(["train", "--backend", "dcgan", "--data", str(path), "--steps", "1", "--out", str(tmp_path / "run"),
                 "--quiet", "--batch-size", "4", "--opt", "width=8", "--opt", "latent_dim=8"]) == 0
    first = capsys.readouterr().err.splitlines()[0]
    assert first == "data: 12 RGB images 16x16 -> model 3 channels, 16 px; no labels: one class"
