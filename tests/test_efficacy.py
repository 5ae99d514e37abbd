"""The efficacy harness on a tiny 3-class 16x16 dataset with a fast fake generator."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

import gan_augment as ga
from gan_augment.cli import main
from gan_augment.eval.efficacy import ARMS, efficacy
from gan_augment.eval.efficacy import arms as arms_mod
from gan_augment.eval.efficacy import runner as runner_mod
from gan_augment.eval.efficacy.arms import (
    Choice,
    build_arm,
    describe_filter,
    duplicate_rows,
    synthetic_mix,
)
from gan_augment.eval.efficacy.baselines import balanced_weights, build
from gan_augment.eval.efficacy.data import Images, cut_rows, stratified_split
from gan_augment.eval.efficacy.generators import state_sha256
from gan_augment.eval.efficacy.stats import paired_difference, summarise, t_interval
from gan_augment.eval.efficacy.train import scores
from gan_augment.filters import SampleFilter

CLASSES = ["r", "g", "b"]
MODEL = "test_resnet"  # timm's own tiny ResNet (373k parameters); runs at 16x16
FAST = dict(model=MODEL, epochs=1, batch_size=8, allow_few_seeds=True, progress=False)


pytestmark = pytest.mark.usefixtures("one_thread")  # two threads on two shared cores: 10x slower here


class FakeGenerator(ga.GenerativeAugmenter):
    """Conditional, instant: class k is channel k lit up, plus noise."""

    name = "fake"
    conditional = True

    def __init__(self, bias: float = 0.7, **cfg):
        super().__init__(**cfg)
        self.bias = torch.tensor([bias])

    def fit(self, data, **kw):
        return self

    def sample(self, n, labels=None, generator=None):
        lab = self.resolve_labels(n, labels, generator)
        x = torch.rand(n, 3, 16, 16, generator=generator) * 0.2
        x[torch.arange(n), lab] += self.bias
        return x.clamp(0, 1)

    def state_dict(self):
        return {"bias": self.bias}

    def load_state_dict(self, state):
        self.bias = state["bias"]


def make_split(per_class, seed, cls=ga.ImageDataset, **kw):
    rng = np.random.default_rng(seed)
    imgs, labels = [], []
    for k, n in enumerate(per_class):
        for _ in range(n):
            img = rng.integers(0, 60, (16, 16, 3))
            img[..., k] += 150
            imgs.append(img.astype(np.uint8))
            labels.append(k)
    return cls(np.stack(imgs), np.array(labels), CLASSES, **kw)


class CountingTest(ga.ImageDataset):
    """A test split that logs every read of its images or labels."""

    def __init__(self, *args, log, **kwargs):
        self._log = None
        super().__init__(*args, **kwargs)
        self._log = log

    @property
    def labels(self):
        if self._log is not None:
            self._log.append("test read")
        return self._labels

    @labels.setter
    def labels(self, value):
        self._labels = value

    def tensor(self):
        self._log.append("test read")
        return super().tensor()

    def __getitem__(self, i):
        self._log.append("test read")
        return super().__getitem__(i)


def fake():
    return FakeGenerator(image_size=16, class_names=CLASSES)


def logged_fit(log, real=runner_mod.fit_and_evaluate):
    def fit(*args, desc="", **kwargs):
        log.append(f"fit {desc}")
        return real(*args, desc=desc, **kwargs)

    return fit


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One full run: 2 ratio candidates (selection on validation), 5 arms, 2 seeds; on one thread,
    as the tests that use it (the thread count is put back after the run)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    log: list[str] = []
    train = make_split([20, 12, 4], 0)
    test = make_split([6, 6, 6], 1, cls=CountingTest, log=log)
    out = tmp_path_factory.mktemp("eff")
    mp = pytest.MonkeyPatch()
    mp.setattr(runner_mod, "fit_and_evaluate", logged_fit(log))
    try:
        res = efficacy(train=train, test=test, generators=[fake()], seeds=2, ratios=[0.5, 0.25],
                       selection_seeds=1, minority="b", out=out, setting="tiny", **FAST)
    finally:
        mp.undo()
        torch.set_num_threads(threads)
    return res, log, train, test, out


# ---- arms --------------------------------------------------------------------------------------
def test_dup_adds_exactly_what_the_synthetic_arm_adds_per_class():
    ds = make_split([20, 12, 4], 0)
    images = Images(ds.tensor(), ds.labels, CLASSES)
    choice = Choice(0, 0.5, "not majority")
    mix, info_s = build_arm("real+synthetic", images, 3, fake(), choice)
    dup, info_d = build_arm("real+dup", images, 3, fake(), choice)
    assert info_s["added"] == info_d["added"] == {"r": 0, "g": 8, "b": 4}  # ratio 0.5 caps at the real count
    assert Counter(dup.targets) == Counter(mix.targets)
    assert len(dup) == len(mix) == 36 + 12
    real = images.images.permute(0, 2, 3, 1).numpy()
    for i in range(36, len(dup)):  # every extra item is a real image of its own class
        img, y = dup[i]
        raw = ((img + 1) * 127.5).round().permute(1, 2, 0).numpy().astype(np.uint8)
        matches = np.nonzero((real == raw).all(axis=(1, 2, 3)))[0]
        assert len(matches) and all(images.labels[m] == y for m in matches)
    again, _ = build_arm("real+dup", images, 3, fake(), choice)
    other, _ = build_arm("real+dup", images, 4, fake(), choice)
    assert np.array_equal(dup.rows, again.rows) and not np.array_equal(dup.rows, other.rows)


def test_duplicate_rows_draws_each_class_from_its_own_rows_with_replacement():
    labels = np.array([0] * 5 + [1] * 3 + [2] * 2)
    rows = duplicate_rows(labels, {0: 0, 1: 7, 2: 400}, seed=1)
    assert Counter(labels[rows].tolist()) == {1: 7, 2: 400}
    assert set(rows[labels[rows] == 2].tolist()) == {8, 9}  # both drawn: with replacement, uniform


def test_every_arm_builds_and_unknown_arm_is_an_error():
    ds = make_split([6, 4, 3], 0)
    images = Images(ds.tensor(), ds.labels, CLASSES)
    assert len(ARMS) == 7 and set(arms_mod.ARMS) < set(ARMS)
    for arm in ARMS:
        data, info = build(arm, images, 0, fake(), Choice(0, 0.5, "not majority"))
        x, y = data[len(data) - 1]
        assert x.shape == (3, 16, 16) and x.dtype == torch.float32 and -1 <= x.min() <= x.max() <= 1
        assert info["items"] == len(data)
    for build_fn in (build_arm, build):
        with pytest.raises(ga.ConfigError, match="unknown arm"):
            build_fn("real+gan", images, 0)


class RecordingMix:
    calls: list = []

    def __init__(self, *args, **kwargs):
        RecordingMix.calls.append(kwargs)


def test_filter_reaches_syntheticmix_only_when_given(monkeypatch):
    class Agreement:
        def __init__(self):
            self.min_confidence = 0.5
            self.classifier = torch.nn.Linear(2, 2)

    monkeypatch.setattr(arms_mod, "SyntheticMix", RecordingMix)
    RecordingMix.calls = []
    ds = make_split([6, 4, 3], 0)
    base = build_arm("real", Images(ds.tensor(), ds.labels, CLASSES), 0)[0]
    f = Agreement()
    synthetic_mix(base, fake(), Choice(0, 0.5, "minority", None), 0)
    synthetic_mix(base, fake(), Choice(0, 0.5, "minority", f), 0)
    assert "filter" not in RecordingMix.calls[0] and RecordingMix.calls[1]["filter"] is f
    d = describe_filter(f)
    assert d["config"] == {"min_confidence": 0.5} and len(d["weights_sha256"]["classifier"]) == 64
    assert describe_filter(f) == d  # stable, so it can key stored runs


# ---- data --------------------------------------------------------------------------------------
def test_stratified_split_is_per_class_seeded_and_keeps_singletons_in_fit():
    labels = np.array([0] * 20 + [1] * 7 + [2] * 2 + [3])
    fit, val = stratified_split(labels, 0.15, seed=0)
    assert not set(fit) & set(val) and sorted([*fit, *val]) == list(range(len(labels)))
    assert Counter(labels[val].tolist()) == {0: 3, 1: 1, 2: 1}
    assert 29 in fit
    assert np.array_equal(val, stratified_split(labels, 0.15, seed=0)[1])
    assert not np.array_equal(val, stratified_split(labels, 0.15, seed=1)[1])


def test_cut_reproduces_the_benchmarks_hard_setting(shared_data):
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_efficacy", Path(__file__).parents[1] / "benchmarks/efficacy.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    labels, names = ga.read_labels(shared_data / "pbc_bloodcell_64.npz", split="train")
    train = ga.ImageDataset(np.zeros((len(labels), 4, 4, 3), np.uint8), labels, names)  # labels are all it reads
    rows = bench.hard_rows(train)
    b = names.index("basophil")
    kept = rows[labels[rows] == b]
    recorded = json.loads((Path(__file__).parents[1] / "docs/efficacy/results_hard.json").read_text())
    assert kept.tolist() == recorded["kept_basophil_rows"]  # the same 19 basophils as the old report
    assert len(rows) == int((labels != b).sum()) + 19
    assert np.array_equal(rows, cut_rows(labels, names, {"basophil": 19}, seed=0))  # = --cut basophil=19


# ---- statistics --------------------------------------------------------------------------------
def test_t_interval_against_scipy_and_by_hand():
    v = [0.81, 0.84, 0.79, 0.88, 0.83]
    iv = t_interval(v)
    lo, hi = stats.t.interval(0.95, len(v) - 1, loc=np.mean(v), scale=stats.sem(v))
    assert iv.mean == pytest.approx(np.mean(v)) and iv.low == pytest.approx(lo) and iv.high == pytest.approx(hi)
    iv = t_interval([1, 2, 3, 4, 5])  # sd sqrt(2.5), t(0.975, 4) = 2.7764451
    assert iv.high - 3 == pytest.approx(2.7764451 * math.sqrt(2.5) / math.sqrt(5), rel=1e-6)
    assert math.isnan(t_interval([0.5]).low) and t_interval([0.5]).mean == 0.5
    assert t_interval([0.2, float("nan"), 0.4]).n == 2


def test_paired_differences_pair_by_seed():
    a = {0: 0.90, 1: 0.70, 2: 0.85, 7: 0.5}
    b = {2: 0.80, 0: 0.88, 1: 0.69}  # order and an unmatched seed must not matter
    iv = paired_difference(a, b)
    d = [0.02, 0.01, 0.05]
    lo, hi = stats.t.interval(0.95, 2, loc=np.mean(d), scale=stats.sem(d))
    assert iv.n == 3 and iv.mean == pytest.approx(np.mean(d)) and (iv.low, iv.high) == pytest.approx((lo, hi))
    # unpaired, the same numbers give a far wider interval: pairing is what is being tested
    assert t_interval([0.90, 0.70, 0.85]).high - t_interval([0.90, 0.70, 0.85]).low > 5 * (iv.high - iv.low)


def test_summary_differences_use_the_same_seed():
    runs = [{"arm": arm, "seed": s, "scores": {"accuracy": base + s / 10}}
            for arm, base in (("real", 0.5), ("real+dup", 0.6), ("real+synthetic", 0.7)) for s in (0, 1, 2)]
    out = summarise(runs, ["real", "real+dup", "real+synthetic"], ["accuracy"])
    diff = out["paired"]["real+synthetic - real+dup"]["accuracy"]
    assert diff["mean"] == pytest.approx(0.1) and diff["low"] == pytest.approx(0.1) == diff["high"]
    assert "real - real+dup" not in out["paired"] and "real+dup - real" in out["paired"]


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_scores_match_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 60)  # class 3 never occurs, but is sometimes predicted
    p = np.where(rng.random(60) < 0.6, y, rng.integers(0, 4, 60))
    s = scores(torch.as_tensor(p), y, ["a", "b", "c", "d"])
    assert s["accuracy"] == pytest.approx(metrics.accuracy_score(y, p))
    assert s["balanced_accuracy"] == pytest.approx(metrics.balanced_accuracy_score(y, p))
    assert s["macro_f1"] == pytest.approx(metrics.f1_score(y, p, average="macro"))
    rec = metrics.recall_score(y, p, average=None, labels=[0, 1, 2])
    assert [s["recall"][c] for c in "abc"] == pytest.approx(rec.tolist()) and s["recall"]["d"] is None


# ---- the whole harness -------------------------------------------------------------------------
def test_validation_is_carved_from_train_and_test_is_read_only_after_selection(tiny_run):
    res, log, train, test, _ = tiny_run
    fit, val = res["data"]["fit_rows"], res["data"]["val_rows"]
    assert not set(fit) & set(val) and sorted(fit + val) == list(range(len(train)))
    test_images = {bytes(x) for x in test.tensor().numpy()}
    assert not any(bytes(train.tensor()[i].numpy()) in test_images for i in val)
    selection = [i for i, e in enumerate(log) if e.startswith("fit select")]
    first_test = log.index("test read")
    assert len(selection) == 2 and max(selection) < first_test  # 2 candidates x 1 seed, then test
    assert all(e.startswith("fit select") for e in log[:first_test])
    assert sum(e.startswith("fit real") for e in log) == 2 * len(ARMS)
    assert res["data"]["counts"]["val"] == {"r": 3, "g": 2, "b": 1}


def test_results_carry_provenance(tiny_run):
    res, _, _, _, out = tiny_run
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["runs"] == res["runs"]
    gen = on_disk["generators"][0]
    assert gen["weights_sha256"] == state_sha256(fake().state_dict())
    assert gen["config"]["class_names"] == CLASSES and "training_summary" in gen
    assert set(on_disk["versions"]) >= {"torch", "timm", "gan-augment"}
    assert on_disk["invocation"]["arguments"]["ratios"] == [0.5, 0.25]
    assert len(on_disk["data"]["train_source"]["sha256"]) == 64
    assert on_disk["data"]["counts"]["train"] == {"r": 20, "g": 12, "b": 4}
    assert on_disk["data"]["counts"]["test"] == {"r": 6, "g": 6, "b": 6}
    assert "equal optimiser steps" in on_disk["protocol"]["recipe"]["step_policy"]
    assert {r["scores"]["steps"] for r in on_disk["runs"]} == {on_disk["protocol"]["total_steps"]}
    assert len(on_disk["selection"]["scores"]) == 2 and on_disk["selection"]["chosen"]["ratio"] in (0.5, 0.25)


def test_runs_pair_every_arm_with_every_seed_and_dup_matches_synthetic(tiny_run):
    res = tiny_run[0]
    assert Counter((r["arm"], r["seed"]) for r in res["runs"]) == {(a, s): 1 for a in ARMS for s in (0, 1)}
    by = {(r["arm"], r["seed"]): r for r in res["runs"]}
    for s in (0, 1):
        assert by[("real+dup", s)]["added"] == by[("real+synthetic", s)]["added"] == res["added_per_class"]
        assert by[("real+dup", s)]["items"] == by[("real+synthetic", s)]["items"]
    d = [by[("real+synthetic", s)]["scores"]["balanced_accuracy"] - by[("real+dup", s)]["scores"]["balanced_accuracy"]
         for s in (0, 1)]
    assert res["summary"]["paired"]["real+synthetic - real+dup"]["balanced_accuracy"]["mean"] == pytest.approx(np.mean(d))


def test_report_and_chart_are_written(tiny_run):
    from PIL import Image

    res, _, _, _, out = tiny_run
    text = (out / "report.md").read_text()
    assert "real+synthetic - real+dup" in text and "duplication" in text and "b recall" in text
    with Image.open(out / "efficacy.png") as im:
        assert im.size[0] > 100


def test_rerun_skips_finished_runs_and_changed_settings_do_not_merge(tiny_run, monkeypatch):
    res, _, train, _, out = tiny_run
    test = make_split([6, 6, 6], 1)
    calls: list[str] = []
    monkeypatch.setattr(runner_mod, "fit_and_evaluate", logged_fit(calls))
    again = efficacy(train=train, test=test, generators=[fake()], seeds=2, ratios=[0.5, 0.25],
                     selection_seeds=1, minority="b", out=out, setting="tiny", **FAST)
    assert calls == [] and again["runs"] == res["runs"]
    n_files = len(list((out / "runs").glob("*.json")))
    other = FakeGenerator(bias=0.6, image_size=16, class_names=CLASSES)  # other weights
    changed = efficacy(train=train, test=test, generators=[other], seeds=2, arms=("real", "real+synthetic"),
                       ratios=0.5, out=out, **FAST)
    assert calls == ["fit real+synthetic seed 0", "fit real+synthetic seed 1"]  # real arms unchanged: reused
    assert len(list((out / "runs").glob("*.json"))) == n_files + 2
    assert [r["scores"] for r in changed["runs"] if r["arm"] == "real"] == \
           [r["scores"] for r in res["runs"] if r["arm"] == "real"]
    calls.clear()
    longer = efficacy(train=train, test=test, generators=[fake()], seeds=2, arms=("real",), out=out,
                      **{**FAST, "epochs": 2})
    assert calls == ["fit real seed 0", "fit real seed 1"]
    assert {r["scores"]["steps"] for r in longer["runs"]} == {2 * res["protocol"]["steps_per_epoch"]}


def test_too_few_seeds_and_bad_settings_are_clear_errors(tmp_path):
    train, test = make_split([6, 4, 3], 0), make_split([2, 2, 2], 1)
    with pytest.raises(ga.ConfigError, match="at least 5"):
        efficacy(train=train, test=test, generators=[fake()], seeds=3, out=tmp_path)
    with pytest.raises(ga.ConfigError, match="timm has no model"):
        efficacy(train=train, test=test, generators=[fake()], seeds=5, model="resnet_nope", out=tmp_path)
    with pytest.raises(ga.ConfigError, match="no class 'x'"):
        efficacy(train=train, test=test, generators=[fake()], seeds=5, criterion="recall:x", out=tmp_path)
    with pytest.raises(ga.ConfigError, match="cannot make dataset classes"):
        efficacy(train=train, test=test, seeds=5, out=tmp_path, model=MODEL, epochs=1,
                 generators=[FakeGenerator(image_size=16, class_names=["r", "g"])])
    assert not (tmp_path / "runs").exists()


# ---- CLI ---------------------------------------------------------------------------------------
def test_cli_errors_are_one_line_and_exit_2(tiny_npz, tmp_path, capsys):
    base = ["efficacy", "--data", str(tiny_npz), "--out", str(tmp_path / "o")]
    for extra, words in ((["--generator", str(tmp_path / "missing")], "no model folder"),
                         (["--generator", "x", "--cut", "disc"], "CLASS=N"),
                         (["--generator", "x", "--seeds", "2"], "at least 5")):
        assert main(base + extra) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("gan-augment: error:") and "\n" not in err and words in err


def test_cli_runs_end_to_end_on_a_saved_model(tiny_npz, tmp_path, capsys):
    model = ga.create("cwgan-gp", image_size=16, width=8, latent_dim=16, embed_dim=4, class_names=["disc", "square"])
    model.save_pretrained(tmp_path / "gen", card=False)
    args = ["efficacy", "--data", str(tiny_npz), "--generator", str(tmp_path / "gen"), "--model", MODEL,
            "--epochs", "1", "--batch-size", "8", "--seeds", "2", "--allow-few-seeds", "--cut", "square=4",
            "--minority", "square", "--out", str(tmp_path / "o"), "--quiet"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "duplication" in printed and "report:" in printed
    res = json.loads((tmp_path / "o" / "results.json").read_text())
    assert res["data"]["counts"]["train"] == {"disc": 12, "square": 4}
    assert res["invocation"]["command"].startswith("gan-augment efficacy --data")
    assert res["generators"][0]["weights_file"].endswith("model.safetensors")
    assert res["added_per_class"] == {"disc": 0, "square": 4}


# ---- issue 24: external validation/test images, precision, free arms, filters, sweep, timing ----
def external_run(tmp_path, monkeypatch, log, **kw):
    """Validation from one dataset, test from another (a CountingTest), no carve."""
    train = make_split([20, 12, 4], 0)
    val = make_split([5, 5, 5], 2, cls=CountingTest, log=[])  # its own log: only test reads count
    test = make_split([7, 7, 7], 1, cls=CountingTest, log=log)
    monkeypatch.setattr(runner_mod, "fit_and_evaluate", logged_fit(log))
    return efficacy(train=train, test=test, val=val, generators=[fake()], seeds=2, ratios=[0.5, 0.25],
                    selection_seeds=1, minority="b", out=tmp_path, **{**FAST, **kw}), train, val


def test_external_validation_and_test_images_are_used_and_test_is_read_last(tmp_path, monkeypatch, capsys):
    log: list[str] = []
    res, train, val = external_run(tmp_path, monkeypatch, log, verbose=True)
    first_test = log.index("test read")
    assert [e for e in log[:first_test]] == ["fit select seed 0", "fit select seed 0"]  # 2 candidates
    assert res["data"]["counts"]["val"] == {"r": 5, "g": 5, "b": 5}
    assert res["data"]["counts"]["test"] == {"r": 7, "g": 7, "b": 7}
    assert res["data"]["counts"]["fit"] == res["data"]["counts"]["train"]  # no carve: fit on all rows
    assert res["data"]["val_rows"] == [] and len(res["data"]["val_source"]["sha256"]) == 64
    printed = capsys.readouterr().out
    assert "validation: 15 images (r 5, g 5, b 5)" in printed and "test: 21 images (r 7, g 7, b 7)" in printed
    text = (tmp_path / "report.md").read_text()
    assert "Validation images (every choice is made on these): 15 (r 5, g 5, b 5)" in text
    assert "Test images (read once, after every choice): 21 (r 7, g 7, b 7)" in text


def test_external_files_must_not_hold_training_images(tmp_path, tiny_npz):
    import shutil

    copy = tmp_path / "same.npz"
    shutil.copy(tiny_npz, copy)  # its 'test' rows are fine, but its 'train' rows are the training images
    with pytest.raises(ga.DataError, match="are also training images"):
        efficacy(tiny_npz, [FakeGenerator(image_size=16, class_names=["disc", "square"])], val=copy,
                 split_val="train", seeds=1, out=tmp_path / "o", **FAST)


def test_precision_auto_is_the_trainers_rule_and_shares_stored_runs(tmp_path, monkeypatch):
    from conftest import auto_precision

    train, test = make_split([6, 4, 3], 0), make_split([2, 2, 2], 1)
    calls: list[str] = []
    monkeypatch.setattr(runner_mod, "fit_and_evaluate", logged_fit(calls))
    kw = dict(train=train, test=test, generators=[fake()], seeds=1, arms=("real",), out=tmp_path, **FAST)
    explicit = efficacy(precision=auto_precision(), **kw)
    assert explicit["protocol"]["precision"]["asked"] == auto_precision()
    calls.clear()
    auto = efficacy(**kw)  # the default
    assert auto["protocol"]["precision"]["asked"] == "auto"
    assert auto["protocol"]["precision"]["used"] == auto["protocol"]["recipe"]["precision"] == auto_precision()
    assert calls == []  # same precision in use: the stored run is found


def test_balanced_loss_weights_and_the_loss_they_give():
    labels = np.array([0] * 6 + [1] * 3 + [2] * 1)
    w = balanced_weights(labels, 4)  # class 3 has no images
    assert w.tolist() == pytest.approx([10 / 18, 10 / 9, 10 / 3, 0.0])
    assert (w[labels]).mean() == pytest.approx(1.0)  # mean weight over the images: 1
    ds = make_split([6, 3, 1], 0)
    images = Images(ds.tensor(), ds.labels, CLASSES)
    data, info = build("real+balanced-loss", images, 0)
    assert info["added"] == {"r": 0, "g": 0, "b": 0} and info["class_weights"]["b"] == pytest.approx(10 / 3)
    xs, ts = zip(*(data[i] for i in range(len(data))))
    logits = torch.randn(len(data), 3, generator=torch.Generator().manual_seed(0))
    soft = torch.nn.functional.cross_entropy(logits, torch.stack(ts))  # what train.fit computes
    y = torch.as_tensor(labels[:10])
    per = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    assert soft == pytest.approx(float((torch.as_tensor(w[:3], dtype=torch.float32)[y] * per).mean()), rel=1e-6)


def test_classic_dup_duplicates_like_dup_through_classic_augmentation():
    ds = make_split([20, 12, 4], 0)
    images = Images(ds.tensor(), ds.labels, CLASSES)
    choice = Choice(0, 0.5, "not majority")
    dup, info_d = build("real+dup", images, 3, fake(), choice)
    cdup, info_c = build("real+classic+dup", images, 3, fake(), choice)
    assert info_c["added"] == info_d["added"] and np.array_equal(cdup.rows, dup.rows)
    plain, classic = build("real", images, 3)[0], build("real+classic", images, 3)[0]
    changed = sum(not torch.equal(cdup[i][0], dup[i][0]) for i in range(len(dup)))
    assert changed > len(dup) // 4  # flips/rotations/jitter reach the copies too
    assert sum(not torch.equal(classic[i][0], plain[i][0]) for i in range(len(plain))) > 0


def test_classic_synthetic_is_judged_against_classic_dup(tiny_run):
    res = tiny_run[0]
    paired = res["summary"]["paired"]
    assert "real+classic+synthetic - real+classic+dup" in paired and "real+classic - real+classic+dup" in paired
    assert "real+synthetic - real+classic+dup" not in paired
    assert res["protocol"]["bars"] == {"real+synthetic": "real+dup", "real+classic+synthetic": "real+classic+dup"}
    from gan_augment.eval.efficacy.report import verdict

    lines = verdict(res)
    assert any("`real+classic+synthetic`" in v and "classic augmentation" in v for v in lines)


def test_old_results_json_still_renders():
    from gan_augment.eval.efficacy import report

    old = json.loads((Path(__file__).parent / "data" / "efficacy_results_0.1.0.json").read_text())
    assert "precision" not in old["protocol"] and "timing" not in old
    text = report.render(old)
    assert "real+synthetic - real+dup" in text and "Test images (read once" in text


def test_filter_words_become_candidates_trained_on_fit_rows_only(tmp_path, monkeypatch):
    from gan_augment.eval import agreement
    from gan_augment.eval.efficacy.candidates import parse_filter_word

    assert parse_filter_word("none") is None and parse_filter_word("agreement") == 0.5
    assert parse_filter_word("Agreement:0.3") == 0.3
    for bad, words in (("agreemnt", "unknown filter"), ("agreement:2", "(0, 1]"), ("agreement:x", "(0, 1]")):
        with pytest.raises(ga.ConfigError, match=re_escape(words)):
            parse_filter_word(bad)
    seen: list[int] = []
    real = agreement.train_agreement_classifier

    def recording(data, **kw):
        seen.append(len(data[1]))
        return real(data, **kw)

    monkeypatch.setattr(agreement, "train_agreement_classifier", recording)
    train, test = make_split([20, 12, 8], 0), make_split([4, 4, 4], 1)
    res = efficacy(train=train, test=test, generators=[fake()], seeds=1, arms=("real+dup", "real+synthetic"),
                   filters=["none", "agreement:0.01"], filter_steps=3, selection_seeds=1, out=tmp_path, **FAST)
    assert seen == [sum(res["data"]["counts"]["fit"].values())]  # the fit rows, not validation or test
    chosen = [s["choice"]["filter"] for s in res["selection"]["scores"]]
    assert chosen[0] is None and chosen[1]["class"].endswith("ClassifierAgreement")
    assert chosen[1]["config"]["min_confidence"] == 0.01 and "classifier" in chosen[1]["weights_sha256"]


def re_escape(s: str) -> str:
    import re

    return re.escape(s)


class RejectAll(SampleFilter):
    def accept(self, images, class_name):
        return torch.zeros(len(images), dtype=torch.bool)


def test_a_candidate_that_cannot_fill_its_bank_is_dropped_not_fatal(tmp_path):
    train, test = make_split([20, 12, 8], 0), make_split([4, 4, 4], 1)
    res = efficacy(train=train, test=test, generators=[fake()], seeds=1, arms=("real+synthetic",),
                   filters=[RejectAll(max_draw_factor=1), None], selection_seeds=1, out=tmp_path, **FAST)
    scores = res["selection"]["scores"]
    assert "passed RejectAll" in scores[0]["failed"] and "failed" not in scores[1]
    assert res["selection"]["chosen"]["filter"] is None
    assert "failed:" in (tmp_path / "report.md").read_text()
    with pytest.raises(ga.DataError, match="every candidate failed"):
        efficacy(train=train, test=test, generators=[fake()], seeds=1, arms=("real+synthetic",),
                 filters=[RejectAll(max_draw_factor=1), RejectAll(max_draw_factor=1)], out=tmp_path / "b", **FAST)


def test_time_estimate_before_the_first_run_and_time_taken(tmp_path, capsys):
    train, test = make_split([6, 4, 3], 0), make_split([2, 2, 2], 1)
    kw = dict(train=train, test=test, generators=[fake()], seeds=1, arms=("real", "real+balanced-loss"),
              out=tmp_path, verbose=True, **FAST)
    res = efficacy(**kw)
    lines = capsys.readouterr().out.splitlines()
    first = next(i for i, ln in enumerate(lines) if ln.startswith("final arms: about "))
    assert "2 run(s)" in lines[first] and lines[-1].startswith("took ") and "2 run(s) trained" in lines[-1]
    assert res["timing"]["trained"] == 2 and res["timing"]["stored"] == 0
    efficacy(**kw)
    again = capsys.readouterr().out
    assert "about" not in again and "0 run(s) trained, 2 reused" in again  # nothing to estimate


def test_sweep_runs_each_size_and_charts_gain_over_dup(tmp_path):
    from PIL import Image

    from gan_augment.eval.efficacy import efficacy_sweep

    train, test = make_split([20, 12, 10], 0), make_split([4, 4, 4], 1)
    res = efficacy_sweep(train=train, test=test, generators=[fake()], sweep={"b": [3, 6]}, seeds=2,
                         arms=("real", "real+dup", "real+synthetic"), out=tmp_path, **FAST)
    assert [p["train_count"] for p in res["points"]] == [3, 6]
    assert [p["added"] for p in res["points"]] == [3, 6]  # ratio 0.5: as many synthetic as real
    one = json.loads((tmp_path / "b-3" / "results.json").read_text())
    by = {(r["arm"], r["seed"]): r["scores"]["balanced_accuracy"] for r in one["runs"]}
    gain = res["points"][0]["gain_over_dup"]["real+synthetic"]["balanced_accuracy"]
    assert gain["mean"] == pytest.approx(np.mean([by[("real+synthetic", s)] - by[("real+dup", s)] for s in (0, 1)]))
    assert set(res["points"][0]["gain_over_dup"]) == {"real", "real+synthetic"}
    assert "| 3 (" in (tmp_path / "sweep.md").read_text()
    with Image.open(tmp_path / "sweep.png") as im:
        assert im.size[0] > 100
    for bad, words in (({"b": [3]}, "two or more"), ({"b": [3, 4], "g": [2, 3]}, "one class")):
        with pytest.raises(ga.ConfigError, match=words):
            efficacy_sweep(train=train, test=test, generators=[fake()], sweep=bad, out=tmp_path / "x", **FAST)


def test_cli_sweep_and_new_flag_errors(tiny_npz, tmp_path, capsys):
    base = ["efficacy", "--data", str(tiny_npz), "--out", str(tmp_path / "o"), "--generator", "x"]
    for extra, words in ((["--cut", "disc=3", "--cut", "disc=5", "--cut", "square=2", "--cut", "square=4"],
                          "a sweep varies one class"),
                         (["--cut", "disc=3", "--cut", "disc=3"], "repeats a size"),
                         (["--filter", "agreemnt"], "unknown filter"),
                         (["--arm", "real+gan", "--seeds", "5"], "unknown arm")):
        assert main(base + extra) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("gan-augment: error:") and "\n" not in err and words in err, err


def test_external_validation_must_list_the_training_classes(tmp_path):
    train, test = make_split([6, 4, 3], 0), make_split([2, 2, 2], 1)
    other = ga.ImageDataset(make_split([3, 3, 3], 2).tensor().permute(0, 2, 3, 1).numpy(),
                            np.repeat([0, 1, 2], 3), ["r", "g", "x"])
    with pytest.raises(ga.DataError, match="validation split's classes"):
        efficacy(train=train, test=test, val=other, generators=[fake()], seeds=1, out=tmp_path, **FAST)


def test_report_states_precision_time_and_new_arm_keys(tiny_run):
    res, _, _, _, out = tiny_run
    text = (out / "report.md").read_text()
    assert f"Precision: {res['protocol']['precision']['why']}." in text and "runs trained" in text
    stored = [json.loads(p.read_text())["settings"] for p in (out / "runs").glob("*.json")]
    from gan_augment.eval.efficacy.baselines import code_sha256

    for st in stored:  # only the new arms carry their module's hash: the old arms' keys are unchanged
        assert ("arm_code" in st) == (st["arm"] in ("real+classic+dup", "real+balanced-loss"))
        if "arm_code" in st:
            assert st["arm_code"] == code_sha256()


# ---- SyntheticMix's replace and synthetic_epochs as candidates (issue 24 item 1) ---------------
def test_epoch_options_reach_syntheticmix_and_key_runs_only_when_not_default(monkeypatch):
    from gan_augment.eval.efficacy.candidates import choice_key, epoch_options, grid

    plain, swapped = Choice(0, 0.5, "minority"), Choice(0, 0.5, "minority", None, 0.3, 4)
    # the keys stored runs had before these options existed, unchanged at the defaults
    assert choice_key(plain, ["abc"]) == {"generator_sha256": "abc", "ratio": 0.5, "strategy": "minority",
                                          "filter": None, "refresh": "epoch"}
    assert choice_key(swapped, ["abc"]) == {**choice_key(plain, ["abc"]), "replace": 0.3, "synthetic_epochs": 4}
    assert "replace" not in plain.describe(["g"]) and swapped.describe(["g"])["synthetic_epochs"] == 4
    g = grid(1, [0.5], ["minority"], [None], [0.0, 0.3], [None, 4])
    assert [(c.replace, c.synthetic_epochs) for c in g] == [(0.0, None), (0.0, 4), (0.3, None), (0.3, 4)]
    assert grid(1, [0.5], ["minority"], [None]) == [plain]
    assert epoch_options(0.2, 3) == ([0.2], [3]) and epoch_options([0, 0.5], [None, 2]) == ([0.0, 0.5], [None, 2])
    for bad, words in (((1.5, None), "replace=1.5 is not a share"), ((0.0, 0), "synthetic_epochs=0"),
                       (([], None), "at least one candidate")):
        with pytest.raises(ga.ConfigError, match=re_escape(words)):
            epoch_options(*bad)
    monkeypatch.setattr(arms_mod, "SyntheticMix", RecordingMix)
    RecordingMix.calls = []
    ds = make_split([6, 4, 3], 0)
    base = build_arm("real", Images(ds.tensor(), ds.labels, CLASSES), 0)[0]
    synthetic_mix(base, fake(), plain, 0)
    synthetic_mix(base, fake(), swapped, 0)
    assert "replace" not in RecordingMix.calls[0] and "synthetic_epochs" not in RecordingMix.calls[0]
    assert RecordingMix.calls[1]["replace"] == 0.3 and RecordingMix.calls[1]["synthetic_epochs"] == 4


def test_the_training_loop_calls_set_epoch_at_every_pass():
    from gan_augment.eval.efficacy.train import Recipe, fit

    class Passes(torch.utils.data.Dataset):
        def __init__(self, n):
            self.n, self.epochs = n, []

        def __len__(self):
            return self.n

        def __getitem__(self, i):
            return torch.zeros(3, 16, 16), i % 3

        def set_epoch(self, epoch):
            self.epochs.append(epoch)

    ds = Passes(12)  # 12 items, 8 real: 2 steps an epoch, 3 epochs = 6 steps = 2 passes of 3 batches
    fit(ds, Recipe(model=MODEL, epochs=3, batch_size=4), 3, 3, n_real=8, seed=0, device=torch.device("cpu"))
    assert ds.epochs == [0, 1]


def test_validation_chooses_among_replace_and_synthetic_epochs_candidates(tmp_path):
    train, test = make_split([20, 12, 8], 0), make_split([4, 4, 4], 1)
    res = efficacy(train=train, test=test, generators=[fake()], seeds=1, arms=("real+synthetic",),
                   strategies="minority", replaces=[0.0, 0.3], synthetic_epochs=[None, 1], selection_seeds=1,
                   out=tmp_path, **FAST)
    described = [s["choice"] for s in res["selection"]["scores"]]
    assert [(c.get("replace", 0.0), c.get("synthetic_epochs")) for c in described] == [
        (0.0, None), (0.0, 1), (0.3, None), (0.3, 1)]
    stored = [json.loads(p.read_text())["settings"] for p in (tmp_path / "runs").rglob("*.json")]
    keys = [s["choice"] for s in stored if s["phase"] == "selection"]
    assert sum("replace" not in k and "synthetic_epochs" not in k for k in keys) == 1 and len(keys) == 4
    report = (tmp_path / "report.md").read_text()
    assert "replace 0.3, synthetic epochs 1" in report


def test_cli_replace_and_synthetic_epochs_flags(tiny_npz, tmp_path, capsys, monkeypatch):
    from gan_augment.eval import efficacy as efficacy_pkg

    seen = {}

    def recording(data, generators, **kw):
        seen.update(kw)
        raise ga.ConfigError("stop here")

    monkeypatch.setattr(efficacy_pkg, "efficacy", recording)
    base = ["efficacy", "--data", str(tiny_npz), "--out", str(tmp_path / "o"), "--generator", "x"]
    assert main(base + ["--replace", "0", "--replace", "0.25", "--synthetic-epochs", "none",
                        "--synthetic-epochs", "5"]) == 2
    assert seen["replaces"] == [0.0, 0.25] and seen["synthetic_epochs"] == [None, 5]
    assert main(base) == 2 and seen["replaces"] == 0.0 and seen["synthetic_epochs"] is None
    monkeypatch.undo()
    capsys.readouterr()
    for extra, words in ((["--replace", "half"], "--replace expects a share"),
                         (["--replace", "1.5"], "replace=1.5 is not a share"),
                         (["--synthetic-epochs", "-2"], "--synthetic-epochs expects a number")):
        assert main(base + extra) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("gan-augment: error:") and "\n" not in err and words in err, err
