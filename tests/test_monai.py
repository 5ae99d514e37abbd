"""MONAI GenerativeReplace / GenerativeReplaced: class-correct, channel-first, metadata kept and
marked, reproducible under set_random_state, not cached by CacheDataset, safe in workers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest_mix import FakeConditional, class_of

import gan_augment as ga

monai = pytest.importorskip("monai")
from monai.data import CacheDataset, DataLoader, Dataset, MetaTensor  # noqa: E402
from monai.transforms import Compose, EnsureTyped, RandFlipd, ScaleIntensityd  # noqa: E402

from gan_augment.monai import META_KEY, GenerativeReplace, GenerativeReplaced  # noqa: E402


@pytest.fixture()
def aug():
    return FakeConditional(image_size=16, class_names=["a", "b", "c"])


def meta_image(c=3, h=20, w=24, dtype=torch.float32):
    return MetaTensor(torch.zeros(c, h, w, dtype=dtype), affine=torch.diag(torch.tensor([2.0, 3.0, 1.0, 1.0])),
                      meta={"filename_or_obj": "cell_001.png", "patient": "p7"})


@pytest.mark.parametrize("img, white", [
    (meta_image(), 1.0),
    (meta_image(dtype=torch.uint8), 255.0),
    (meta_image(c=1), 1.0),
    (np.zeros((3, 20, 24), np.uint8), 255.0),
    (np.full((3, 20, 24), 200.0, np.float32), 255.0),  # LoadImage-style 0..255 floats
])
def test_array_transform_replaces_in_the_inputs_form(aug, img, white):
    t = GenerativeReplace(aug, prob=1.0)
    t.set_random_state(0)
    for label in range(3):
        out = t(img, label)
        assert type(out) is type(img) and tuple(out.shape) == tuple(img.shape) and out.dtype == img.dtype
        assert float(out.max()) <= white
        assert class_of(float(out.float().mean() if torch.is_tensor(out) else out.mean()) / white, 3) == label


def test_metadata_is_kept_and_marked(aug):
    img = meta_image()
    out = GenerativeReplace(aug, prob=1.0)(img, 2)
    assert out.meta["filename_or_obj"] == "cell_001.png" and out.meta["patient"] == "p7"
    assert torch.equal(out.affine, img.affine)
    assert out.meta[META_KEY] is True
    kept = GenerativeReplace(aug, prob=0.0)(meta_image(), 2)
    assert kept.meta[META_KEY] is False and not kept.any()


def test_set_random_state_is_reproducible(aug):
    def run(seed):
        t = GenerativeReplace(aug, prob=0.5)
        t.set_random_state(seed)
        return [t(meta_image(), 1) for _ in range(10)]

    a, b, c = run(1), run(1), run(2)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))
    assert 0 < sum(bool(x.meta[META_KEY]) for x in a) < 10


def test_dictionary_transform_in_compose(aug):
    tf = Compose([EnsureTyped(keys="image", dtype=torch.float32), ScaleIntensityd(keys="image", minv=0, maxv=1),
                  GenerativeReplaced(keys="image", augmenter=aug, label_key="label", prob=0.5),
                  RandFlipd(keys="image", prob=0.5, spatial_axis=1)])
    data = [{"image": np.random.default_rng(i).integers(0, 256, (3, 16, 16)).astype(np.uint8), "label": i % 3}
            for i in range(12)]

    def run(seed):
        tf.set_random_state(seed)
        return [tf(d) for d in data]

    a, b = run(4), run(4)
    for x, y in zip(a, b):
        assert torch.equal(x["image"], y["image"]) and x["is_synthetic"] == y["is_synthetic"]
    flags = [x["is_synthetic"] for x in a]
    assert 0 < sum(flags) < len(flags)
    for x in a:
        assert x["image"].meta[META_KEY] == x["is_synthetic"]
        if x["is_synthetic"]:
            assert class_of(x["image"].mean().item(), 3) == x["label"]
    with pytest.raises(ga.DataError, match="label_key"):
        GenerativeReplaced(keys="image", augmenter=aug, prob=1.0)({"image": meta_image()})


def test_cache_dataset_does_not_cache_the_replacement_and_workers_collate(aug):
    data = [{"image": np.full((3, 16, 16), 10 * i, np.uint8), "label": i % 3} for i in range(8)]
    tf = Compose([EnsureTyped(keys="image", dtype=torch.float32), ScaleIntensityd(keys="image", minv=0, maxv=1),
                  GenerativeReplaced(keys="image", augmenter=aug, prob=0.5)])
    ds = CacheDataset(data, transform=tf, progress=False)
    assert all("is_synthetic" not in item for item in ds._cache)  # caching stopped before it
    tf.set_random_state(0)
    first = [ds[i]["is_synthetic"] for i in range(8)]
    second = [ds[i]["is_synthetic"] for i in range(8)]
    assert first != second  # redrawn each time, not cached
    batches = []
    try:
        for _ in range(2):  # monai's DataLoader seeds each worker's transforms from torch's seed
            monai.utils.set_determinism(seed=0)
            batches.append(next(iter(DataLoader(ds, batch_size=8, num_workers=2))))
    finally:
        monai.utils.set_determinism(seed=None)
    b = batches[0]
    assert b["image"].shape == (8, 3, 16, 16) and isinstance(b["image"], MetaTensor)
    assert torch.equal(batches[0]["image"], batches[1]["image"])  # workers seeded reproducibly
    for img, label, syn in zip(b["image"], b["label"], b["is_synthetic"]):
        if syn:
            assert class_of(img.mean().item(), 3) == int(label)


def test_plain_dataset_and_errors(aug):
    ds = Dataset([{"image": meta_image(), "label": 1}],
                 transform=GenerativeReplaced(keys="image", augmenter=aug, prob=1.0))
    assert ds[0]["is_synthetic"] is True
    with pytest.raises(ga.DataError, match="channel-first"):
        GenerativeReplace(aug, prob=1.0)(torch.zeros(16, 16, 3, 2), 0)
    with pytest.raises(ga.DataError, match="label"):
        GenerativeReplace(aug, prob=1.0)(meta_image(), None)
    with pytest.raises(ga.ConfigError, match="value_range"):
        GenerativeReplace(aug, value_range=3)
    out = GenerativeReplace(aug, prob=1.0, value_range=(-1, 1))(meta_image(), 0)
    assert float(out.min()) >= -1 and float(out.mean()) < 0  # class "a" is dark: mapped into [-1, 1]


def test_classes_limits_the_replacement_to_one_class(aug):
    """Only the chosen class is replaced, and other classes need not be ones the model knows."""
    t = GenerativeReplaced(keys="image", augmenter=aug, prob=1.0, classes=["b"], class_names=["a", "b", "other"])
    for label, replaced in [(0, False), (1, True), (2, False)]:
        out = t({"image": meta_image(), "label": label})
        assert out["is_synthetic"] is replaced and bool(out["image"].any()) is replaced
        assert out["image"].meta[META_KEY] is replaced
    one = GenerativeReplace(aug, prob=1.0, classes=1)
    assert one(meta_image(), label=1).any() and not one(meta_image(), label=0).any()
    with pytest.raises(ga.ConfigError, match="classes= names 'z', which the model cannot make"):
        GenerativeReplaced(keys="image", augmenter=aug, prob=1.0, classes=["z"])({"image": meta_image(), "label": 0})
    with pytest.raises(ga.ConfigError, match="classes must be a class name or label"):
        GenerativeReplace(aug, classes=0.5)
