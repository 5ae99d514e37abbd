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
from gan_augment.eval.efficacy.data import Images, cut_rows, stratified_split
from gan_augment.eval.efficacy.generators import state_sha256
from gan_augment.eval.efficacy.stats import paired_difference, summarise, t_interval
from gan_augment.eval.efficacy.train import scores

CLASSES = ["r", "g", "b"]
MODEL = "test_resnet"  # timm's own tiny ResNet (373k parameters); runs at 16x16
FAST = dict(model=MODEL, epochs=1, batch_size=8, allow_few_seeds=True, progress=False)


@pytest.fixture(autouse=True)
def one_thread():
    """Two torch threads on two shared cores spin against other jobs; one is 10x faster here."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


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
    for arm in ARMS:
        data, info = build_arm(arm, images, 0, fake(), Choice(0, 0.5, "not majority"))
        x, y = data[len(data) - 1]
        assert x.shape == (3, 16, 16) and x.dtype == torch.float32 and -1 <= x.min() <= x.max() <= 1
        assert info["items"] == len(data)
    with pytest.raises(ga.ConfigError, match="unknown arm"):
        build_arm("real+gan", images, 0)


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
