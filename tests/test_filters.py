"""Classifier-agreement filtering: exactly the accepted images are kept, counts are made up,
the cap fails clearly, banks stay deterministic, acceptance is counted right, class names are
mapped by name, and the agreement classifier never trains on a test split."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import gan_augment as ga
from gan_augment.eval.agreement import train_agreement_classifier
from gan_augment.mix.dataset import SyntheticMix
from gan_augment.mix.filters import ClassifierAgreement, SampleFilter, draw_accepted

ROOT = Path(__file__).resolve().parents[1]


class StreamAugmenter(ga.GenerativeAugmenter):
    """Image i is a constant v_i, v_i drawn one at a time from the generator: the stream of
    values does not depend on how draws are batched, so the expected kept images are known."""

    name = "stream"
    conditional = True
    defaults = {}

    def __init__(self, **config):
        super().__init__(**{"image_size": 8, "channels": 1, "class_names": ["a", "b", "c"], **config})
        self.batches: list[int] = []

    def fit(self, data, **train_config):
        return self

    def sample(self, n, labels=None, generator=None):
        self.resolve_labels(n, labels, generator)
        self.batches.append(n)
        v = torch.cat([torch.rand(1, generator=generator) for _ in range(n)]) if n else torch.empty(0)
        return v.view(n, 1, 1, 1).expand(n, *self.image_shape).clone()

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


class ThresholdClassifier(nn.Module):
    """Class a when the image is bright (> 0.6), b when dark (< 0.3), never c; in between it is
    unsure (1/3 each), so a filter at 0.5 rejects it."""

    class_names = ["a", "b", "c"]

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))  # a parameter, so the filter finds a device

    def forward(self, x):
        v = x.float().mean((1, 2, 3))
        big = 10.0 * self.scale
        a = torch.where(v > 0.6, big, -big)
        b = torch.where(v < 0.3, big, -big)
        return torch.stack([a, b, torch.full_like(a, -10.0)], 1)


def stream(seed, k):
    g = torch.Generator().manual_seed(seed)
    return [float(torch.rand(1, generator=g)) for _ in range(k)]


def rule(name):
    return {"a": lambda v: v > 0.6, "b": lambda v: v < 0.3, "c": lambda v: False}[name]


# ---- draw_accepted -------------------------------------------------------------------------
@pytest.mark.parametrize("name, n, batch", [("a", 5, 256), ("a", 40, 8), ("b", 17, 3)])
def test_keeps_exactly_the_accepted_images_in_draw_order(name, n, batch):
    aug, f = StreamAugmenter(), ClassifierAgreement(ThresholdClassifier(), 0.5)
    out = draw_accepted(aug, aug.class_index(name), n, torch.Generator().manual_seed(3), f, batch_size=batch)
    vs = stream(3, 2000)
    expected = [v for v in vs if rule(name)(v)][:n]
    assert out.shape == (n, 1, 8, 8)
    assert out[:, 0, 0, 0].tolist() == pytest.approx(expected, abs=0)
    drawn = sum(aug.batches)
    assert max(aug.batches) <= batch and len(aug.batches) >= 2  # made up over several draws
    acc = f.acceptance()[name]
    assert acc["drawn"] == drawn
    assert acc["accepted"] == sum(rule(name)(v) for v in vs[:drawn])
    assert acc["rate"] == acc["accepted"] / acc["drawn"]
    # it stopped as soon as it could: the last batch held the n-th accepted image
    assert sum(rule(name)(v) for v in vs[:drawn - aug.batches[-1]]) < n


def test_acceptance_adds_up_over_calls_and_classes():
    aug, f = StreamAugmenter(), ClassifierAgreement(ThresholdClassifier(), 0.5)
    draw_accepted(aug, 0, 4, torch.Generator().manual_seed(0), f)
    first = dict(f.acceptance()["a"])
    draw_accepted(aug, 0, 4, torch.Generator().manual_seed(1), f)
    draw_accepted(aug, 1, 2, torch.Generator().manual_seed(2), f)
    acc = f.acceptance()
    assert acc["a"]["drawn"] > first["drawn"] and acc["a"]["accepted"] >= 8 and set(acc) == {"a", "b"}
    f.reset_acceptance()
    assert f.acceptance() == {}


def test_the_cap_raises_a_clear_error_naming_class_rate_and_fixes():
    aug, f = StreamAugmenter(), ClassifierAgreement(ThresholdClassifier(), 0.5, max_draw_factor=5)
    with pytest.raises(ga.DataError) as e:
        draw_accepted(aug, 2, 6, torch.Generator().manual_seed(0), f, batch_size=7)
    msg = str(e.value)
    assert "class 'c'" in msg and "0 of 30" in msg and "(0.0%)" in msg
    for fix in ("Lower min_confidence", "train the generator longer", "drop the filter"):
        assert fix in msg
    assert sum(aug.batches) == 30 and f.acceptance()["c"] == {"accepted": 0, "drawn": 30, "rate": 0.0}


def test_low_but_sufficient_acceptance_does_not_hit_the_cap():
    aug, f = StreamAugmenter(), ClassifierAgreement(ThresholdClassifier(), 0.5, max_draw_factor=20)
    out = draw_accepted(aug, 1, 30, torch.Generator().manual_seed(5), f, batch_size=16)
    assert len(out) == 30 and bool((out < 0.3).all())


def test_same_seed_same_images_other_seed_other_images():
    def run(seed):
        aug = StreamAugmenter()
        return draw_accepted(aug, 0, 12, torch.Generator().manual_seed(seed),
                             ClassifierAgreement(ThresholdClassifier()), batch_size=5)

    assert torch.equal(run(1), run(1)) and not torch.equal(run(1), run(2))
    assert draw_accepted(StreamAugmenter(), 0, 0, torch.Generator(), ClassifierAgreement(ThresholdClassifier())).shape == (0, 1, 8, 8)


# ---- classes and settings ------------------------------------------------------------------
def test_classes_are_mapped_by_name():
    clf = ThresholdClassifier()
    vs = stream(0, 500)
    # the same logits read with the first two names swapped: "a" is now the dark class
    f = ClassifierAgreement(clf, class_names=["b", "a", "c"])
    out = draw_accepted(StreamAugmenter(), 0, 5, torch.Generator().manual_seed(0), f)
    assert out[:, 0, 0, 0].tolist() == [v for v in vs if v < 0.3][:5]
    # an augmenter whose classes come in another order still gets its own class judged
    aug = StreamAugmenter(class_names=["c", "b", "a"])
    out = draw_accepted(aug, 2, 5, torch.Generator().manual_seed(0), ClassifierAgreement(clf))
    assert out[:, 0, 0, 0].tolist() == [v for v in vs if v > 0.6][:5]


def test_missing_class_names_are_clear_errors():
    clf = ThresholdClassifier()
    f = ClassifierAgreement(clf, class_names=["a", "b", "x"])
    with pytest.raises(ga.ConfigError, match=r"does not know the augmenter's class\(es\) \['c'\].*knows \['a', 'b', 'x'\]"):
        draw_accepted(StreamAugmenter(), 2, 1, torch.Generator(), f)
    base = ga.ImageDataset(np.zeros((7, 8, 8, 1), np.uint8), np.array([0, 0, 0, 0, 1, 2, 2]), ["a", "b", "c"])
    with pytest.raises(ga.ConfigError, match=r"\['c'\]"):
        SyntheticMix(base, StreamAugmenter(), strategy={"c": 3}, ratio=None, filter=f)
    plain = nn.Linear(4, 3)
    with pytest.raises(ga.ConfigError, match="class_names"):
        ClassifierAgreement(plain)
    with pytest.raises(ga.ConfigError, match="logits"):
        ClassifierAgreement(nn.Sequential(nn.Flatten(), nn.Linear(64, 2)), class_names=["a", "b", "c"]).scores(
            torch.zeros(2, 1, 8, 8), "a")
    for bad in (dict(min_confidence=0), dict(min_confidence=1.5), dict(max_draw_factor=0.5), dict(batch_size=0)):
        with pytest.raises(ga.ConfigError):
            ClassifierAgreement(clf, **bad)
    with pytest.raises(ga.ConfigError, match="SampleFilter"):
        SyntheticMix(base, StreamAugmenter(), filter=clf)


def test_domain_cnn_is_used_through_its_logits_in_eval_mode():
    from gan_augment.eval.domain_cnn import DomainCNN

    torch.manual_seed(0)
    cnn = DomainCNN(["a", "b", "c"], image_size=8, channels=1, widths=(4,)).train()
    f = ClassifierAgreement(cnn, 0.2)
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    p = f.scores(x, "b")
    cnn.eval()
    with torch.no_grad():
        expected = cnn.logits(x).softmax(1)[:, 1]
    assert torch.allclose(p, expected) and cnn.training is False
    cnn.train()
    f.scores(x, "b")
    assert cnn.training, "the filter must give the classifier back in the mode it found it"
    assert torch.equal(f.accept(x, "b"), expected >= 0.2)


class AcceptAll(SampleFilter):
    def accept(self, images, class_name):
        return torch.ones(len(images), dtype=torch.bool)


def test_a_custom_filter_only_needs_accept():
    aug = StreamAugmenter()
    f = AcceptAll()
    out = draw_accepted(aug, 0, 9, torch.Generator().manual_seed(4), f, batch_size=4)
    assert out[:, 0, 0, 0].tolist() == stream(4, 9) and aug.batches == [4, 4, 1]
    assert f.acceptance()["a"] == {"accepted": 9, "drawn": 9, "rate": 1.0}


# ---- the bank ------------------------------------------------------------------------------
def base_data():
    labels = np.array([0] * 20 + [1] * 6 + [2] * 20)
    return ga.ImageDataset(np.zeros((len(labels), 8, 8, 1), np.uint8), labels, ["a", "b", "c"])


def test_bank_is_filtered_made_up_and_deterministic():
    def mix(seed):
        return SyntheticMix(base_data(), StreamAugmenter(), strategy={"a": 30, "b": 20}, ratio=None, seed=seed,
                            bank_batch=4, filter=ClassifierAgreement(ThresholdClassifier()), refresh="epoch")

    m = mix(0)
    assert m.plan.synthetic == {"a": 10, "b": 14, "c": 0} and len(m) == 46 + 24
    syn = [m.synthetic_image(i) for i in range(46, 70)]
    assert all(int(x.min()) > 0.6 * 255 for x in syn[:10]) and all(int(x.max()) < 0.3 * 255 for x in syn[10:])
    again = mix(0)
    assert all(torch.equal(a, again.synthetic_image(46 + i)) for i, a in enumerate(syn))
    other = mix(1)
    assert not all(torch.equal(a, other.synthetic_image(46 + i)) for i, a in enumerate(syn))
    acc = m.acceptance()
    assert set(acc) == {"a", "b"}
    assert acc == {k: {**v, "rate": v["accepted"] / v["drawn"]} for k, v in m.filter.acceptance().items()}
    assert acc["a"]["accepted"] >= 10 and acc["b"]["accepted"] >= 14
    # each 4-image chunk makes up its own count from its own seed: drawn >= kept
    assert acc["a"]["drawn"] > 10 and acc["b"]["drawn"] > 14
    m.set_epoch(1)  # a new bank: new images, and acceptance counts this epoch's draws only
    fresh = mix(0)
    fresh.set_epoch(1)
    assert m.acceptance() == fresh.acceptance()
    assert not torch.equal(m.synthetic_image(46), syn[0])


def test_bank_without_filter_is_unchanged():
    plain = SyntheticMix(base_data(), StreamAugmenter(), strategy={"a": 30}, ratio=None, bank_batch=4)
    assert plain.acceptance() == {}
    aug = StreamAugmenter()
    from gan_augment.core.layout import fit_images
    from gan_augment.mix.draws import chunk_seed

    x = aug.sample(4, labels=0, generator=torch.Generator().manual_seed(chunk_seed(0, 0, 0, 0)))
    assert torch.equal(plain.synthetic_image(46), fit_images(x, 1, (8, 8))[0])


def test_bank_cap_error_names_the_class():
    m = SyntheticMix(base_data(), StreamAugmenter(), strategy={"c": 25}, ratio=None,
                     filter=ClassifierAgreement(ThresholdClassifier(), max_draw_factor=3))
    with pytest.raises(ga.DataError, match="class 'c'"):
        m.build_bank()


# ---- the transforms ------------------------------------------------------------------------
def test_albumentations_transform_uses_the_filter_and_says_so_in_to_dict():
    import albumentations as A

    from gan_augment.albumentations import GenerativeReplace

    f = ClassifierAgreement(ThresholdClassifier())
    t = A.Compose([GenerativeReplace(StreamAugmenter(), p=1.0, model="stream", filter=f)], seed=0)
    for i in range(5):
        out = t(image=np.zeros((8, 8), np.uint8), label=i % 2)["image"]
        assert (out.min() > 0.6 * 255) if i % 2 == 0 else (out.max() < 0.3 * 255)
    assert f.acceptance()["a"]["accepted"] >= 3
    d = A.to_dict(t)
    assert d["transform"]["transforms"][0]["filter"] == "ClassifierAgreement(min_confidence=0.5)"
    with pytest.raises(ga.ConfigError, match="not serialised"):
        A.from_dict(json.loads(json.dumps(d)))


def test_monai_transforms_use_the_filter():
    from gan_augment.monai import GenerativeReplace, GenerativeReplaced

    f = ClassifierAgreement(ThresholdClassifier())
    t = GenerativeReplace(StreamAugmenter(), prob=1.0, filter=f)
    t.set_random_state(0)
    out = t(torch.zeros(1, 8, 8, dtype=torch.uint8), label=1)
    assert float(out.max()) < 0.3 * 255
    td = GenerativeReplaced(["image"], StreamAugmenter(), prob=1.0, filter=f)
    td.set_random_state(0)
    item = td({"image": torch.zeros(1, 8, 8, dtype=torch.uint8), "label": 0})
    assert float(item["image"].min()) > 0.6 * 255


# ---- the agreement classifier and the split -----------------------------------------------
def test_datasets_record_their_split(tiny_npz):
    assert ga.load_dataset(tiny_npz, split="train").split == "train"
    assert ga.load_dataset(tiny_npz, split="test", classes=["disc"]).split == "test"
    assert ga.load_dataset(tiny_npz).split == "test+train"
    assert ga.load_dataset(tiny_npz, split="test").subset([0]).split == "test"


def test_agreement_classifier_refuses_test_images(tiny_npz):
    for data in (ga.load_dataset(tiny_npz, split="test"), ga.load_dataset(tiny_npz), tiny_npz):
        with pytest.raises(ga.DataError, match="leaks test information"):
            train_agreement_classifier(data, steps=1)
    with pytest.raises(ga.DataError, match="never see test images"):
        train_agreement_classifier(ga.load_dataset(tiny_npz, split="train"), steps=1,
                                   test_dataset=ga.load_dataset(tiny_npz, split="test"))


def test_agreement_classifier_trains_on_the_train_split(tiny_npz):
    train = ga.load_dataset(tiny_npz, split="train")
    clf = train_agreement_classifier(train, steps=20, seed=0, widths=(8, 16), batch_size=16)
    assert clf.class_names == ["disc", "square"] and clf.info["trained_on"]["n_images"] < len(train)
    assert clf.info["eval_split"].startswith("validation")
    again = train_agreement_classifier(train, steps=20, seed=0, widths=(8, 16), batch_size=16)
    assert all(torch.equal(a, b) for a, b in zip(clf.state_dict().values(), again.state_dict().values()))
    f = ClassifierAgreement(clf, 0.5)
    x = torch.from_numpy(train.tensor().numpy()).float() / 255
    p_true = torch.stack([f.scores(x[i:i + 1], train.class_names[y])[0] for i, y in enumerate(train.labels)])
    assert float(p_true.mean()) > 0.5  # it has learnt something about its two classes


# ---- the docs example ----------------------------------------------------------------------
@pytest.mark.slow
def test_filtering_docs_example_runs(tmp_path, monkeypatch):
    text = (ROOT / "docs" / "filtering.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks
    monkeypatch.chdir(ROOT)
    namespace: dict = {}
    for code in blocks:
        exec(compile(code, "docs/filtering.md", "exec"), namespace)
