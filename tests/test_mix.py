"""SyntheticMix: the plan against imbalanced-learn, the ratio cap, determinism across workers,
runs and epochs, batched generation, and items in the base dataset's own form."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest_mix import FakeConditional, class_of, imbalanced_dataset
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gan_augment as ga
from gan_augment.mix.dataset import SyntheticMix
from gan_augment.mix.strategy import ratio_cap, sampling_targets

imblearn_validation = pytest.importorskip("imblearn.utils")
check_sampling_strategy = imblearn_validation.check_sampling_strategy


class LabelsOnly(torch.utils.data.Dataset):
    """A dataset whose images must never be decoded to plan: __getitem__ fails."""

    def __init__(self, labels, names):
        self.targets = list(labels)
        self.classes = names

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        raise AssertionError("an image was decoded while planning")


def fake(k, size=16, channels=3):
    return FakeConditional(image_size=size, channels=channels, class_names=[f"class{i}" for i in range(k)])


def labels_from(counts):
    return np.concatenate([np.full(n, i) for i, n in enumerate(counts)]).astype(np.int64)


# ---- the plan follows the strategy exactly -------------------------------------------------
counts_st = st.lists(st.integers(1, 40), min_size=2, max_size=6)
ratio_st = st.one_of(st.none(), st.floats(0, 1, allow_nan=False), st.sampled_from([0.0, 0.5, 1 / 3, 1.0]))


@st.composite
def strategy_and_counts(draw):
    counts = draw(counts_st)
    kind = draw(st.sampled_from(["word", "dict", "float", "callable"]))
    if kind == "word":
        return counts, draw(st.sampled_from(["minority", "not minority", "not majority", "all", "auto"]))
    if kind == "dict":
        keys = draw(st.lists(st.integers(0, len(counts) - 1), unique=True, max_size=len(counts)))
        return counts, {k: counts[k] + draw(st.integers(0, 30)) for k in keys}
    if kind == "float":
        counts = counts[:2]
        return counts, draw(st.floats(0.05, 1.0))
    keys = draw(st.lists(st.integers(0, len(counts) - 1), unique=True, min_size=1, max_size=len(counts)))
    extra = draw(st.integers(0, 20))
    return counts, (lambda y: {k: int(np.sum(y == k)) + extra for k in keys})


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(strategy_and_counts(), ratio_st)
def test_plan_follows_imblearn_and_ratio(sc, ratio):
    counts, strategy = sc
    y = labels_from(counts)
    try:
        expected = {int(k): int(v) for k, v in check_sampling_strategy(strategy, y, "over-sampling").items()}
    except ValueError:
        with pytest.raises(ValueError):
            SyntheticMix(LabelsOnly(y, [f"class{i}" for i in range(len(counts))]), fake(len(counts)),
                         strategy=strategy, ratio=ratio)
        return
    assert sampling_targets(strategy, y) == expected
    mix = SyntheticMix(LabelsOnly(y, [f"class{i}" for i in range(len(counts))]), fake(len(counts)),
                       strategy=strategy, ratio=ratio)
    for row in mix.plan.rows:
        want = expected.get(row.label, 0)
        assert row.wanted == want
        assert row.real == counts[row.label]
        if ratio is None or ratio >= 1:
            assert row.synthetic == want
        else:
            # never above the cap, and the cap is tight: one more would exceed it
            assert row.synthetic <= want
            assert row.synthetic * (1 - ratio) <= ratio * row.real + 1e-9
            if row.synthetic < want:
                assert (row.synthetic + 1) * (1 - ratio) > ratio * row.real - 1e-9
    assert len(mix) == len(mix.plan) == len(y) + sum(r.synthetic for r in mix.plan.rows)
    assert len(mix.targets) == len(mix)
    assert np.bincount(np.asarray(mix.targets), minlength=len(counts)).tolist() == [
        r.real + r.synthetic for r in mix.plan.rows]


@given(st.integers(0, 10_000), st.fractions(0, 1, max_denominator=50))
def test_ratio_cap_is_exact(real, ratio):
    cap = ratio_cap(real, float(ratio))
    if ratio >= 1:
        assert cap is None
        return
    assert cap * (1 - ratio) <= ratio * real  # exact: s / (real + s) <= ratio
    assert (cap + 1) * (1 - ratio) > ratio * real  # and one more would exceed it


def test_minority_tie_follows_imblearn():
    y = labels_from([5, 2, 2, 9])
    assert sampling_targets("minority", y) == {1: 7}
    assert sampling_targets("not minority", y) == {0: 4, 2: 7, 3: 0}


@pytest.mark.parametrize("strategy, phrase", [
    ("minorty", "Got 'minorty' instead"),
    ("majority", "'sampling_strategy'='majority' cannot be used with over-sampler"),
    (0.5, "can be a float only when the type of target is binary"),
    (1.5, None),  # multi-class is checked first by us; imblearn checks range first
    ({0: 1}, "With over-sampling methods, the number of samples in a class should be greater"),
    ({9: 50}, "target class is/are not present in the data"),
    ({1: -1}, "cannot be negative"),
    ([0, 1], "cannot be a list"),
])
def test_invalid_strategy_errors_like_imblearn(strategy, phrase):
    y = labels_from([10, 4, 2])
    with pytest.raises(ValueError) as theirs:
        check_sampling_strategy(strategy, y, "over-sampling")
    with pytest.raises(ga.ConfigError) as ours:
        SyntheticMix(LabelsOnly(y, ["a", "b", "c"]), FakeConditional(image_size=16, class_names=["a", "b", "c"]),
                     strategy=strategy)
    if phrase is not None:
        assert phrase in str(theirs.value)
        assert phrase in str(ours.value)
    if strategy == "minorty":  # our own message speaks this API's word, not imbalanced-learn's
        assert "strategy= must be one of" in str(ours.value) and "sampling_strategy" not in str(ours.value)


def test_typo_gets_a_suggestion_and_binary_float_ratio_error():
    y = labels_from([10, 4])
    with pytest.raises(ga.ConfigError, match="Did you mean 'minority'"):
        sampling_targets("minorty", y)
    with pytest.raises(ValueError, match="Please increase the ratio"):
        check_sampling_strategy(0.3, y, "over-sampling")
    with pytest.raises(ga.ConfigError, match="Please increase the ratio"):
        sampling_targets(0.3, y)
    assert sampling_targets(0.8, y) == {1: 4}


def test_dict_strategy_by_class_name_and_plan_is_printable(capsys):
    ds = imbalanced_dataset([10, 4, 2])
    mix = SyntheticMix(ds, fake(3), strategy={"class2": 6}, ratio=None, verbose=True)
    assert mix.plan.synthetic == {"class0": 0, "class1": 0, "class2": 4}
    assert mix.plan.to_dict()["class2"] == {"real": 2, "wanted": 4, "synthetic": 4}
    out = capsys.readouterr().out
    assert "class2" in out and "synth" in out and str(mix.plan) in out


# ---- labels without decoding, class matching ---------------------------------------------------
def test_labels_from_label_fn_subset_and_monai_dicts():
    y = labels_from([6, 2])
    fn = SyntheticMix(LabelsOnly(y, ["a", "b"]), FakeConditional(image_size=16, class_names=["a", "b"]),
                      label_fn=lambda ds: [1 - v for v in ds.targets])
    assert fn.plan.real == {"a": 2, "b": 6}
    sub = torch.utils.data.Subset(LabelsOnly(y, ["a", "b"]), [0, 1, 6, 7])
    mix = SyntheticMix(sub, FakeConditional(image_size=16, class_names=["a", "b"]), ratio=None)
    assert mix.plan.real == {"a": 2, "b": 2} and mix.plan.n_synthetic == 0
    monai_data = pytest.importorskip("monai.data")
    dicts = [{"image": f"/nonexistent/{i}.png", "label": int(v)} for i, v in enumerate(y)]
    mds = monai_data.Dataset(dicts, transform=None)
    m = SyntheticMix(mds, FakeConditional(image_size=16, class_names=["0", "1"]), ratio=None)
    assert m.plan.synthetic == {"0": 0, "1": 4}


def test_class_mismatch_is_a_clear_error_and_class_map_fixes_it():
    y = labels_from([10, 4, 2])
    base = LabelsOnly(y, ["neutrophil", "basophil", "monocyte"])
    aug = FakeConditional(image_size=16, class_names=["neutrophil", "basophil", "eosinophil"])
    with pytest.raises(ga.ConfigError) as err:
        SyntheticMix(base, aug)
    msg = str(err.value)
    assert "monocyte" in msg and "eosinophil" in msg and "class_map" in msg
    assert "basophil'" not in msg.split("knows")[0]  # only the unmatched class is listed
    mix = SyntheticMix(base, aug, class_map={"monocyte": "eosinophil"})
    assert [r.model_class for r in mix.plan.rows] == [None, 1, 2]
    skip = SyntheticMix(base, aug, class_map={"monocyte": None})
    assert skip.plan.synthetic["monocyte"] == 0 and skip.plan.synthetic["basophil"] == 4
    with pytest.raises(ga.ConfigError, match="Did you mean"):
        SyntheticMix(base, aug, class_map={"monocyte": "eosinophill"})


def test_unnamed_labels_suggest_class_names():
    base = LabelsOnly(labels_from([10, 4]), None)
    aug = FakeConditional(image_size=16, class_names=["big", "small"])
    with pytest.raises(ga.ConfigError, match="class_names="):
        SyntheticMix(base, aug)
    assert SyntheticMix(base, aug, class_names=["big", "small"]).plan.synthetic == {"big": 0, "small": 4}


def test_unconditional_model_serves_its_one_class():
    ds = imbalanced_dataset([10, 3], names=["neutrophil", "basophil"])
    aug = ga.create("dcgan", image_size=16, width=8, latent_dim=8, class_names=["basophil"])
    mix = SyntheticMix(ds, aug, strategy="minority", ratio=0.5)
    assert mix.plan.synthetic == {"neutrophil": 0, "basophil": 3}
    img, label = mix[len(mix) - 1]
    assert label == 1 and img.shape == (3, 16, 16) and img.dtype == torch.uint8


# ---- determinism, epochs, workers, batching --------------------------------------------------
def synthetic_batch(mix, num_workers=0, epoch=0):
    mix.set_epoch(epoch)
    idx = list(range(len(mix.base), len(mix)))
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(mix, idx), batch_size=5,
                                         num_workers=num_workers, shuffle=False)
    return torch.cat([x for x, _ in loader])


def test_same_seed_same_items_across_workers_and_runs_new_items_per_epoch():
    ds = imbalanced_dataset([12, 5, 3])
    mix = SyntheticMix(ds, fake(3), ratio=None, seed=7, bank_batch=4, refresh="epoch")
    a0 = synthetic_batch(mix, 0)
    a2 = synthetic_batch(mix, 2)
    assert a0.shape[0] == mix.plan.n_synthetic == 16
    assert torch.equal(a0, a2)
    again = SyntheticMix(imbalanced_dataset([12, 5, 3]), fake(3), ratio=None, seed=7, bank_batch=4, refresh="epoch")
    assert torch.equal(synthetic_batch(again, 0), a0)
    other_seed = SyntheticMix(ds, fake(3), ratio=None, seed=8, bank_batch=4, refresh="epoch")
    assert not torch.equal(synthetic_batch(other_seed, 0), a0)
    e1 = synthetic_batch(mix, 0, epoch=1)
    assert not torch.equal(e1, a0)
    assert torch.equal(synthetic_batch(mix, 2, epoch=1), e1)
    assert torch.equal(synthetic_batch(mix, 0, epoch=0), a0)  # an epoch's bank is reproducible
    fixed = SyntheticMix(ds, fake(3), ratio=None, seed=7, bank_batch=4, refresh="fixed")
    assert torch.equal(synthetic_batch(fixed, 0, 0), synthetic_batch(fixed, 0, 3))
    every2 = SyntheticMix(ds, fake(3), ratio=None, seed=7, bank_batch=4, refresh=2)
    b0, b1, b2 = (synthetic_batch(every2, 0, e) for e in range(3))
    assert torch.equal(b0, a0) and torch.equal(b1, a0) and not torch.equal(b2, a0)
    default = SyntheticMix(ds, fake(3), ratio=None, seed=7, bank_batch=4)  # the default is every 2 epochs
    assert default.refresh == 2 and torch.equal(synthetic_batch(default, 0, 1), a0)


def test_set_epoch_reaches_persistent_workers():
    ds = imbalanced_dataset([12, 5, 3])
    mix = SyntheticMix(ds, fake(3), ratio=None, seed=1, bank_batch=4, refresh="epoch")
    idx = list(range(len(ds), len(mix)))
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(mix, idx), batch_size=4, num_workers=2,
                                         persistent_workers=True)
    seen = []
    for epoch in range(2):
        mix.set_epoch(epoch)
        seen.append(torch.cat([x for x, _ in loader]))
    ref = SyntheticMix(ds, fake(3), ratio=None, seed=1, bank_batch=4, refresh="epoch")
    assert torch.equal(seen[0], synthetic_batch(ref, 0, 0))
    assert torch.equal(seen[1], synthetic_batch(ref, 0, 1))


def test_bank_uses_batched_forward_passes_and_right_classes():
    ds = imbalanced_dataset([40, 10, 3])
    aug = fake(3)
    mix = SyntheticMix(ds, aug, ratio=None, bank_batch=16, refresh="epoch")
    for i in range(len(mix)):
        img, label = mix[i]
        if mix.is_synthetic(i):
            assert class_of(img.float().mean().item() / 255, 3) == label
    assert mix.plan.synthetic == {"class0": 0, "class1": 30, "class2": 37}
    assert aug.calls == 2 + 3  # ceil(30/16) + ceil(37/16): never one pass per item
    mix.set_epoch(1)
    mix.build_bank()
    assert aug.calls == 10


# ---- forms and transforms ------------------------------------------------------------------
class PILDataset(torch.utils.data.Dataset):
    """torchvision style: PIL images, the transform applied inside __getitem__."""

    def __init__(self, counts, transform=None, size=20, mode="RGB"):
        from PIL import Image

        self.targets = labels_from(counts).tolist()
        self.classes = [f"class{i}" for i in range(len(counts))]
        rng = np.random.default_rng(0)
        shape = (size, size, 3) if mode == "RGB" else (size, size)
        self.images = [Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode) for _ in self.targets]
        self.transform = transform
        self.target_transform = None

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        img = self.images[i]
        return (self.transform(img) if self.transform else img), self.targets[i]


def test_pil_items_and_the_bases_own_transform_applies_to_synthetic_items():
    from PIL import Image

    raw = SyntheticMix(PILDataset([6, 2], mode="L"), fake(2), ratio=None)
    img, label = raw[len(raw) - 1]
    assert isinstance(img, Image.Image) and img.mode == "L" and img.size == (20, 20) and label == 1

    calls = []

    def tf(im):
        calls.append(type(im).__name__)
        return torch.from_numpy(np.array(im)).permute(2, 0, 1).float() / 255

    mix = SyntheticMix(PILDataset([6, 2], transform=tf), fake(2), ratio=None, return_synthetic_flag=True)
    x, y, flag = mix[len(mix) - 1]
    assert flag is True and y == 1 and x.shape == (3, 20, 20) and x.dtype == torch.float32
    assert calls == ["Image"]  # the transform got a PIL image, as for real items
    assert class_of(x.mean().item(), 2) == 1
    assert mix[0][2] is False


def test_transform_argument_applies_to_real_and_synthetic_hwc_arrays():
    class Arrays(torch.utils.data.Dataset):
        def __init__(self):
            self.labels = labels_from([5, 1])
            self.x = np.zeros((6, 12, 12, 3), np.uint8)

        def __len__(self):
            return 6

        def __getitem__(self, i):
            return self.x[i], int(self.labels[i])

    seen = []
    mix = SyntheticMix(Arrays(), fake(2, size=16), ratio=None, class_names=["class0", "class1"],
                       transform=lambda a: seen.append(a.shape) or a)
    assert len(mix) == 10
    mix[0]
    img, y = mix[9]
    assert seen == [(12, 12, 3), (12, 12, 3)] and img.dtype == np.uint8 and y == 1


def test_monai_dataset_items_are_dicts_with_metatensors_and_collate():
    monai = pytest.importorskip("monai")
    from monai.data import DataLoader, Dataset, MetaTensor
    from monai.transforms import Compose, EnsureTyped, RandFlipd, ScaleIntensityd

    y = labels_from([6, 2])
    rng = np.random.default_rng(0)
    data = [{"image": rng.integers(0, 256, (3, 16, 16), dtype=np.uint8), "label": int(v)} for v in y]
    tf = Compose([EnsureTyped(keys="image", dtype=torch.float32), ScaleIntensityd(keys="image", minv=0, maxv=1),
                  RandFlipd(keys="image", prob=0.5, spatial_axis=0)])
    ds = Dataset(data, transform=tf)
    aug = FakeConditional(image_size=16, class_names=["0", "1"])
    mix = SyntheticMix(ds, aug, ratio=None, return_synthetic_flag=True)
    item = mix[len(mix) - 1]
    assert isinstance(item["image"], MetaTensor) and item["image"].shape == (3, 16, 16)
    assert item["label"] == 1 and item["is_synthetic"] is True
    assert float(item["image"].max()) <= 1.0
    batch = next(iter(DataLoader(mix, batch_size=len(mix))))
    assert batch["image"].shape == (len(mix), 3, 16, 16)
    assert batch["is_synthetic"].tolist() == [False] * 8 + [True] * 4
    assert monai.__version__


def test_monai_paths_get_a_clear_error():
    from monai.data import Dataset

    data = [{"image": f"/data/{i}.png", "label": int(v)} for i, v in enumerate(labels_from([4, 1]))]
    mix = SyntheticMix(Dataset(data, transform=lambda d: d), FakeConditional(image_size=16, class_names=["0", "1"]),
                       ratio=None)
    with pytest.raises(ga.DataError, match="does not start with MONAI.s LoadImage"):
        mix[len(mix) - 1]


def test_grey_dataset_gets_grey_resized_synthetic_images():
    ds = imbalanced_dataset([6, 2], size=28, channels=1)
    ds.channels = 1
    mix = SyntheticMix(ds, fake(2, size=16, channels=3), ratio=None)
    img, _ = mix[len(mix) - 1]
    assert img.shape == (1, 28, 28) and img.dtype == torch.uint8


def test_bad_arguments():
    ds = imbalanced_dataset([6, 2])
    with pytest.raises(ga.ConfigError, match="ratio"):
        SyntheticMix(ds, fake(2), ratio=1.5)
    with pytest.raises(ga.ConfigError, match="refresh"):
        SyntheticMix(ds, fake(2), refresh="never")
    with pytest.raises(ga.ConfigError, match="GenerativeAugmenter"):
        SyntheticMix(ds, object())
    with pytest.raises(ga.DataError, match="label_fn"):
        SyntheticMix([1, 2, 3], fake(2))
    with pytest.raises(IndexError):
        SyntheticMix(ds, fake(2))[100]


def test_ratio_a_hair_below_one_means_no_cap():
    """Found by hypothesis: 0.9999999999999999 rounds to 1 as typed and must not divide by zero."""
    from gan_augment.mix.strategy import ratio_cap

    assert ratio_cap(5, 0.9999999999999999) is None
    assert ratio_cap(5, 0.5) == 5 and ratio_cap(4, 1 / 3) == 2


def test_integer_labels_without_names_get_the_one_argument_to_add():
    y = labels_from([10, 4, 2])
    aug = FakeConditional(image_size=16, class_names=["a", "b", "c"])
    with pytest.raises(ga.ConfigError) as err:
        SyntheticMix(LabelsOnly(y, None), aug)  # as many labels as model classes: their names, to check
    assert "add class_names=['a', 'b', 'c'] to SyntheticMix(...)" in str(err.value)
    assert SyntheticMix(LabelsOnly(y, None), aug, class_names=["a", "b", "c"]).plan.synthetic == {"a": 0, "b": 4, "c": 2}  # ratio=0.5 caps


# ---- replace=p and synthetic_epochs=E (issue 24: "looks synthetic" must predict no class) -----
def flagged(mix, num_workers=0, loader=None):
    """Every item of the current epoch, through a DataLoader: (images, labels, synthetic flags)."""
    loader = loader or torch.utils.data.DataLoader(mix, batch_size=4, num_workers=num_workers, shuffle=False)
    xs, ys, fs = zip(*loader)
    return torch.cat(xs), torch.cat(ys), torch.cat(fs)


def test_replace_serves_an_exact_share_of_every_class_as_synthetic_images_of_that_class():
    ds = imbalanced_dataset([12, 5, 3])
    mix = SyntheticMix(ds, fake(3), strategy="minority", ratio=0.5, replace=0.25, return_synthetic_flag=True)
    assert mix.plan.replaced == {"class0": 3, "class1": 1, "class2": 1}  # round(0.25 * n), halves up
    assert len(mix) == 20 + 3 and mix.targets == SyntheticMix(ds, fake(3), strategy="minority").targets
    chosen = []
    for epoch in range(3):
        mix.set_epoch(epoch)
        x, y, f = flagged(mix)
        real = f[:20]
        for c, n in enumerate([3, 1, 1]):
            assert int(real[y[:20] == c].sum()) == n  # exact per class, the majority's too
        assert f[20:].all() and (y == torch.as_tensor(mix.targets)).all()
        for img, label, syn in zip(x, y, f):
            if syn:
                assert class_of(img.float().mean().item() / 255, 3) == label
        assert [bool(mix.is_synthetic(i)) for i in range(len(mix))] == f.tolist()
        chosen.append(torch.nonzero(real).flatten().tolist())
        for i in chosen[-1]:  # a replaced item is its class's bank image, not the real one
            assert not torch.equal(x[i], torch.as_tensor(ds[i][0]))
    assert len({tuple(c) for c in chosen}) > 1  # other items each epoch
    everything = SyntheticMix(ds, fake(3), ratio=None, replace=1.0, return_synthetic_flag=True)
    assert all(everything[i][2] for i in range(len(everything)))
    off = SyntheticMix(ds, fake(3), ratio=None, return_synthetic_flag=True)
    assert off.replace == 0.0 and not any(off[i][2] for i in range(20)) and "replace" not in str(off.plan)
    assert "replaced" not in off.plan.to_dict()["class0"] and mix.plan.to_dict()["class0"]["replaced"] == 3


def test_replaced_items_come_out_like_added_ones_through_transforms_and_dicts():
    from PIL import Image

    raw = SyntheticMix(PILDataset([6, 2], mode="L"), fake(2), ratio=None, replace=0.5, return_synthetic_flag=True)
    replaced = next(raw[i] for i in range(8) if raw[i][2])
    added = raw[len(raw) - 1]
    assert isinstance(replaced[0], Image.Image) and replaced[0].mode == added[0].mode == "L"
    assert replaced[0].size == added[0].size
    tf = lambda im: torch.from_numpy(np.array(im)).permute(2, 0, 1).float() / 255  # noqa: E731
    mix = SyntheticMix(PILDataset([6, 2], transform=tf), fake(2), ratio=None, replace=0.5,
                       return_synthetic_flag=True)
    items = [mix[i] for i in range(len(mix))]
    swapped = [it for it in items[:8] if it[2]]
    assert len(swapped) == 3 + 1
    for img, label, _ in swapped:
        assert img.dtype == items[-1][0].dtype == torch.float32 and img.shape == items[-1][0].shape
        assert class_of(img.mean().item(), 2) == label
    data = [{"image": np.zeros((3, 16, 16), np.uint8), "label": int(v), "class_name": f"c{v}"}
            for v in labels_from([6, 2])]
    monai = pytest.importorskip("monai")
    dmix = SyntheticMix(monai.data.Dataset(data, transform=None), FakeConditional(image_size=16, class_names=["c0", "c1"]),
                        ratio=None, replace=0.5, return_synthetic_flag=True)
    dmix.set_epoch(0)
    dicts = [dmix[i] for i in range(len(dmix))]
    real_swapped = [d for d in dicts[:8] if d["is_synthetic"]]
    assert len(real_swapped) == 4
    for d in real_swapped:
        same = next(a for a in dicts[8:] if a["label"] == d["label"]) if d["label"] == 1 else None
        assert set(d) == set(dicts[-1]) and d["class_name"] == f"c{d['label']}"
        assert type(d["image"]) is type(dicts[-1]["image"]) and d["image"].dtype == dicts[-1]["image"].dtype
        if same is not None:
            assert d["image"].shape == same["image"].shape
    batch = next(iter(monai.data.DataLoader(dmix, batch_size=len(dmix))))
    assert batch["is_synthetic"].sum() == 4 + 4


def test_replace_is_the_same_with_and_without_workers_and_persistent_workers_see_set_epoch():
    ds = imbalanced_dataset([12, 5, 3])

    def make():
        return SyntheticMix(ds, fake(3), strategy="minority", ratio=0.5, replace=0.3, seed=3, bank_batch=2,
                            refresh="epoch", return_synthetic_flag=True)

    ref, mix = make(), make()
    loader = torch.utils.data.DataLoader(mix, batch_size=4, num_workers=2, persistent_workers=True)
    for epoch in range(3):
        ref.set_epoch(epoch)
        mix.set_epoch(epoch)
        want = flagged(ref, 0)
        for got in (flagged(mix, loader=loader), flagged(mix, 2)):
            assert all(torch.equal(a, b) for a, b in zip(want, got)), epoch
        if epoch:
            assert not torch.equal(want[2], prev[2])  # noqa: F821 - a new choice each epoch
        prev = want  # noqa: F841
    again = make()
    again.set_epoch(2)
    assert all(torch.equal(a, b) for a, b in zip(flagged(again), want))  # a pure function of (seed, epoch)


def test_synthetic_epochs_switch_to_real_items_only_with_the_same_length_and_balance():
    ds = imbalanced_dataset([12, 5, 3])
    aug = fake(3)
    mix = SyntheticMix(ds, aug, strategy="not majority", ratio=None, replace=0.25, synthetic_epochs=2,
                       refresh="epoch", return_synthetic_flag=True)
    n, targets = len(mix), mix.targets
    real_images = torch.stack([torch.as_tensor(ds[i][0]) for i in range(20)])
    for epoch in range(4):
        mix.set_epoch(epoch)
        loader = torch.utils.data.DataLoader(mix, batch_size=4, num_workers=2 if epoch == 3 else 0)
        x, y, f = flagged(mix, loader=loader)
        assert len(mix) == n and y.tolist() == targets and mix.synthetic_over == (epoch >= 2)
        if epoch < 2:
            assert f[20:].all() and f[:20].sum() == 3 + 1 + 1
            continue
        assert not f.any() and not any(mix.is_synthetic(i) for i in range(n))
        assert torch.equal(x[:20], real_images)
        uses = {}
        for i in range(20, n):  # each added item is a real item of its class, used as evenly as possible
            j = next(k for k in range(20) if torch.equal(real_images[k], x[i]))
            assert ds[j][1] == y[i]
            uses[j] = uses.get(j, 0) + 1
        per_class = {c: [uses.get(j, 0) for j in range(20) if ds[j][1] == c] for c in (1, 2)}
        assert all(max(u) - min(u) <= 1 for u in per_class.values()) and sum(per_class[2]) == 9
    calls = aug.calls
    mix.build_bank()
    assert aug.calls == calls  # nothing is generated once the synthetic epochs are over
    assert "synthetic_epochs=2: from epoch 2 on" in str(mix.plan) and "synthetic_epochs=2" in repr(mix)


def test_synthetic_epochs_reach_persistent_workers():
    ds = imbalanced_dataset([12, 5, 3])
    mix = SyntheticMix(ds, fake(3), ratio=None, synthetic_epochs=1, return_synthetic_flag=True)
    loader = torch.utils.data.DataLoader(mix, batch_size=4, num_workers=2, persistent_workers=True)
    flags = []
    for epoch in range(2):
        mix.set_epoch(epoch)
        flags.append(flagged(mix, loader=loader)[2])
    assert flags[0][20:].all() and not flags[1].any()


def test_a_missing_set_epoch_is_warned_once_when_the_epoch_options_need_it(recwarn):
    ds = imbalanced_dataset([6, 2])
    mix = SyntheticMix(ds, fake(2), ratio=None, synthetic_epochs=3)
    for _ in range(3):
        [mix[i] for i in range(len(mix))]
    warned = [w for w in recwarn if "set_epoch was never called" in str(w.message)]
    assert len(warned) == 1 and "train_ds.set_epoch(epoch)" in str(warned[0].message)
    recwarn.clear()
    counted = SyntheticMix(ds, fake(2), ratio=None, replace=0.5)
    for epoch in range(2):
        counted.set_epoch(epoch)
        [counted[i] for i in range(len(counted))]
    plain = SyntheticMix(ds, fake(2), ratio=None)
    for _ in range(2):
        [plain[i] for i in range(len(plain))]
    assert not [w for w in recwarn if "set_epoch" in str(w.message)]


def test_replace_skips_classes_mapped_to_none_and_names_the_reason_for_unknown_ones():
    ds = imbalanced_dataset([6, 2], names=["neutrophil", "basophil"])
    aug = FakeConditional(image_size=16, class_names=["basophil"])
    with pytest.raises(ga.ConfigError, match="replace= serves synthetic images of every class"):
        SyntheticMix(ds, aug, strategy="minority", replace=0.5)
    mix = SyntheticMix(ds, aug, strategy="minority", replace=0.5, class_map={"neutrophil": None})
    assert mix.plan.replaced == {"neutrophil": 0, "basophil": 1}


def test_replacement_images_go_through_the_filter_and_its_class_check():
    from gan_augment.mix.filters import SampleFilter

    class EveryOther(SampleFilter):
        def __init__(self):
            super().__init__()
            self.checked, self.seen = [], []

        def check_classes(self, class_names):
            self.checked = list(class_names)

        def accept(self, images, class_name):
            self.seen.append(class_name)
            return torch.arange(len(images)) % 2 == 0

    f = EveryOther()
    mix = SyntheticMix(imbalanced_dataset([12, 5, 3]), fake(3), strategy="minority", ratio=0.5, replace=0.25,
                       filter=f)
    assert f.checked == ["class0", "class1", "class2"]  # class0 gets no additions, only replacements
    acc = mix.acceptance()
    assert {k: v["accepted"] for k, v in acc.items()} == {"class0": 3, "class1": 1, "class2": 3 + 1}
    assert acc["class0"]["drawn"] == 2 * 3 - 1 and "class0" in f.seen  # drawn until 3 passed
