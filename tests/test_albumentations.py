"""albumentations GenerativeReplace: class-correct replacement in the input's form, albumentations'
own seeding, serialisation by model reference, and clear errors for spatial targets."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest_mix import FakeConditional, class_of

import gan_augment as ga

A = pytest.importorskip("albumentations")
from gan_augment.albumentations import GenerativeReplace  # noqa: E402


@pytest.fixture()
def aug():
    return FakeConditional(image_size=16, class_names=["a", "b", "c"])


@pytest.mark.parametrize("image", [
    np.zeros((20, 24, 3), np.uint8),
    np.zeros((20, 24), np.uint8),
    np.zeros((20, 24, 1), np.uint8),
    np.zeros((20, 24, 3), np.float32),
])
def test_replaces_with_the_items_class_in_the_inputs_form(aug, image):
    t = A.Compose([GenerativeReplace(aug, p=1.0)], seed=0)
    for label in range(3):
        out = t(image=image, label=label)
        img = out["image"]
        assert img.shape == image.shape and img.dtype == image.dtype
        assert out["label"] == label
        white = 255.0 if image.dtype == np.uint8 else 1.0
        assert img.max() <= white
        assert class_of(float(img.mean()) / white, 3) == label


def test_probability_and_albumentations_seeding(aug):
    image = np.zeros((16, 16, 3), np.uint8)

    def run(seed, n=12):
        t = A.Compose([GenerativeReplace(aug, p=0.5)], seed=seed)
        return [t(image=image, label=1)["image"] for _ in range(n)]

    a, b, c = run(3), run(3), run(4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
    replaced = [x.any() for x in a]
    assert 0 < sum(replaced) < len(a)  # p=0.5 both fires and skips
    never = A.Compose([GenerativeReplace(aug, p=0.0)], seed=0)
    assert not never(image=image, label=1)["image"].any()


def test_names_and_class_map(aug):
    image = np.zeros((16, 16, 3), np.uint8)
    t = A.Compose([GenerativeReplace(aug, p=1.0, class_names=["x", "c", "b"], class_map={"x": "a"})], seed=0)
    assert class_of(t(image=image, label=1)["image"].mean() / 255, 3) == 2  # "c" by name
    assert class_of(t(image=image, label=0)["image"].mean() / 255, 3) == 0  # "x" -> "a"
    assert class_of(t(image=image, label="b")["image"].mean() / 255, 3) == 1
    bad = A.Compose([GenerativeReplace(aug, p=1.0, class_names=["zzz"])], seed=0)
    with pytest.raises(ga.ConfigError, match="class_map"):
        bad(image=image, label=0)


@pytest.mark.parametrize("extra", [
    {"mask": np.zeros((16, 16), np.uint8)},
    {"keypoints": np.array([[1.0, 2.0]])},
])
def test_spatial_targets_are_a_clear_error(aug, extra):
    kw = {}
    if "keypoints" in extra:
        kw["keypoint_params"] = A.KeypointParams(format="xy")
    t = A.Compose([GenerativeReplace(aug, p=1.0)], seed=0, **kw)
    with pytest.raises(ga.DataError, match="no masks, boxes or keypoints"):
        t(image=np.zeros((16, 16, 3), np.uint8), label=0, **extra)


def test_bboxes_are_a_clear_error(aug):
    t = A.Compose([GenerativeReplace(aug, p=1.0)], seed=0,
                  bbox_params=A.BboxParams(format="pascal_voc", label_fields=["cls"]))
    with pytest.raises(ga.DataError, match="no masks, boxes or keypoints"):
        t(image=np.zeros((16, 16, 3), np.uint8), label=0, bboxes=[[1, 1, 5, 5]], cls=[0])


def test_missing_label_is_a_clear_error(aug):
    t = A.Compose([GenerativeReplace(aug, p=1.0)], seed=0)
    with pytest.raises(ga.DataError, match="label="):
        t(image=np.zeros((16, 16, 3), np.uint8))


def test_serialises_by_model_reference_not_weights(tmp_path):
    model = ga.create("dcgan", image_size=16, width=8, latent_dim=8, class_names=["neutrophil"])
    torch.manual_seed(0)
    folder = model.save_pretrained(tmp_path / "tiny", card=False)
    t = A.Compose([GenerativeReplace(str(folder), p=1.0), A.HorizontalFlip(p=0.5)], seed=11)
    d = A.to_dict(t)
    text = json.dumps(d)
    assert str(folder) in text and len(text) < 2000  # a reference, no weights
    t2 = A.from_dict(json.loads(text))
    gr = t2.transforms[0]
    assert isinstance(gr, GenerativeReplace) and gr._augmenter is None  # loaded lazily
    t2.set_random_seed(11)
    image = np.zeros((20, 20, 3), np.uint8)
    a = [t(image=image, label=0)["image"] for _ in range(3)]
    b = [t2(image=image, label=0)["image"] for _ in range(3)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert a[0].any()


def test_in_memory_model_without_a_name_explains_how_to_serialise(aug):
    d = A.to_dict(A.Compose([GenerativeReplace(aug, p=1.0)]))
    assert d["transform"]["transforms"][0]["model"] is None
    with pytest.raises(ga.ConfigError, match="save_pretrained"):
        A.from_dict(d)


def test_works_in_dataloader_workers(aug):
    class DS(torch.utils.data.Dataset):
        def __init__(self, tf):
            self.tf = tf

        def __len__(self):
            return 6

        def __getitem__(self, i):
            return self.tf(image=np.zeros((16, 16, 3), np.uint8), label=i % 3)["image"], i % 3

    ds = DS(A.Compose([GenerativeReplace(aug, p=1.0)], seed=0))
    loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2)
    for x, y in loader:
        for img, label in zip(x, y):
            assert class_of(img.float().mean().item() / 255, 3) == int(label)


def test_classes_limits_the_replacement_to_those_classes(aug):
    image = np.zeros((16, 16, 3), np.uint8)
    t = A.Compose([GenerativeReplace(aug, p=1.0, classes=["b"])], seed=0)
    assert t(image=image, label=1)["image"].any()  # "b" is replaced
    assert not t(image=image, label=0)["image"].any() and not t(image=image, label=2)["image"].any()
    by_label = A.Compose([GenerativeReplace(aug, p=1.0, classes=[2])], seed=0)
    assert by_label(image=image, label=2)["image"].any() and not by_label(image=image, label=1)["image"].any()
    assert A.to_dict(t)["transform"]["transforms"][0]["classes"] == ["b"]
    with pytest.raises(ga.ConfigError, match="classes= names 'z', which the model cannot make"):
        A.Compose([GenerativeReplace(aug, p=1.0, classes=["z"])], seed=0)(image=image, label=0)
