"""Sample-quality metrics: the maths on tiny fakes, the extractor round trip, the report, the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_two_class_images
from torchmetrics.image.fid import FrechetInceptionDistance

from gan_augment import metrics as M
from gan_augment.cli import main
from gan_augment.core.data import as_dataset
from gan_augment.core.errors import ModelLoadError
from gan_augment.eval.domain_cnn import train_domain_extractor
from gan_augment.eval.extractors import load_extractor


def gauss(n, d=8, shift=0.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g) + shift


# ---- FID / KID -------------------------------------------------------------------------------
def test_fid_of_a_set_with_itself_is_zero_and_grows_with_shift():
    a = gauss(200)
    assert abs(M.fid_from_features(a, a)) < 1e-3
    fids = [M.fid_from_features(a, gauss(200, shift=s, seed=1)) for s in (0.0, 0.5, 1.0, 2.0)]
    assert fids == sorted(fids)
    # mean term alone: ||mu1 - mu2||^2 = d * shift^2 = 8 * 4 for the last one
    assert fids[-1] == pytest.approx(32.0, rel=0.15)


def test_fid_matches_closed_form_for_gaussians_with_known_covariance():
    a = gauss(4000, d=4, seed=2)
    b = gauss(4000, d=4, seed=3) * 2.0  # cov 4I vs I: trace term = 4 * (1 + 4 - 2*2) = 4
    assert M.fid_from_features(a, b) == pytest.approx(4.0, rel=0.1)


def test_kid_is_near_zero_for_same_distribution_and_grows_with_shift():
    a, b = gauss(300, seed=0), gauss(300, seed=1)
    same = M.kid_from_features(a, b, subset_size=100, subsets=20)
    far = M.kid_from_features(a, gauss(300, shift=1.0, seed=1), subset_size=100, subsets=20)
    farther = M.kid_from_features(a, gauss(300, shift=2.0, seed=1), subset_size=100, subsets=20)
    assert abs(same["mean"]) < 0.05
    assert far["mean"] > 5 * abs(same["mean"]) and farther["mean"] > far["mean"]
    again = M.kid_from_features(a, b, subset_size=100, subsets=20)
    assert again == same  # subsets drawn from the seed, not the global RNG


def test_torchmetrics_fid_accepts_the_extractor_itself(trained_ext, tiny_sets):
    """The extractor is a valid torchmetrics feature module; precomputing features gives the same FID."""
    train, test = tiny_sets
    x_tr, x_te = train.tensor()[:30], test.tensor()[:30]
    fid = FrechetInceptionDistance(feature=trained_ext, normalize=True, input_img_size=(3, 16, 16))
    fid.update(x_tr.float() / 255, real=True)
    fid.update(x_te.float() / 255, real=False)
    direct = float(fid.compute())
    f_tr, _ = trained_ext.extract(x_tr)
    f_te, _ = trained_ext.extract(x_te)
    assert M.fid_from_features(f_tr, f_te) == pytest.approx(direct, rel=1e-3, abs=1e-5)


# ---- IS analogue -------------------------------------------------------------------------------
def test_inception_score_bounds():
    k = 4
    confident_diverse = torch.eye(k).repeat(25, 1) * 50  # certain, every class equally often
    confident_one = torch.zeros(100, k)
    confident_one[:, 0] = 50
    uniform = torch.zeros(100, k)
    assert M.inception_score_from_logits(confident_diverse, splits=1)["mean"] == pytest.approx(k, rel=1e-3)
    assert M.inception_score_from_logits(confident_one, splits=1)["mean"] == pytest.approx(1.0, abs=1e-3)
    assert M.inception_score_from_logits(uniform, splits=1)["mean"] == pytest.approx(1.0, abs=1e-6)


# ---- precision / recall, density / coverage ------------------------------------------------------
def test_precision_recall_identical_and_disjoint():
    a = gauss(100)
    same = M.precision_recall(a, a.clone(), k=3)
    assert same == {"precision": 1.0, "recall": 1.0}
    apart = M.precision_recall(a, gauss(100, shift=50.0, seed=1), k=3)
    assert apart["precision"] == 0.0 and apart["recall"] == 0.0


def test_precision_recall_see_mode_dropping():
    """A generator that covers only half the real data keeps precision, loses recall."""
    real = torch.cat([gauss(100, seed=0), gauss(100, shift=20.0, seed=1)])
    half = gauss(100, seed=2)
    pr = M.precision_recall(real, half, k=3)
    assert pr["precision"] > 0.8 and pr["recall"] < 0.6


def test_density_coverage():
    a = gauss(200, seed=0)
    dc = M.density_coverage(a, gauss(200, seed=1), k=5)
    assert 0.7 < dc["density"] < 1.3 and dc["coverage"] > 0.8
    far = M.density_coverage(a, gauss(200, shift=50.0, seed=1), k=5)
    assert far == {"density": 0.0, "coverage": 0.0}


# ---- MS-SSIM diversity -----------------------------------------------------------------------------
@pytest.mark.parametrize("size", [16, 28, 64])
def test_ms_ssim_identical_images_is_one_and_noise_is_low(size):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, size, size, generator=g)
    assert torch.allclose(M.ms_ssim_pairs(x, x), torch.ones(4), atol=1e-4)
    y = torch.rand(4, 3, size, size, generator=g)
    assert M.ms_ssim_pairs(x, y).max() < 0.3


def test_ms_ssim_settings_fit_torchmetrics_limits():
    st = M.ms_ssim_settings(64)
    assert st["scales"] >= 3 and st["kernel_size"] < 11
    assert sum(st["betas"]) == pytest.approx(1.0)
    assert M.ms_ssim_settings(256)["scales"] == 5 and M.ms_ssim_settings(256)["kernel_size"] == 11


def test_ms_ssim_diversity_detects_collapse():
    g = torch.Generator().manual_seed(0)
    one = torch.rand(1, 3, 28, 28, generator=g)
    collapsed = one.repeat(20, 1, 1, 1)
    diverse = torch.rand(20, 3, 28, 28, generator=g)
    assert M.ms_ssim_diversity(collapsed, 30)["mean"] == pytest.approx(1.0, abs=1e-4)
    assert M.ms_ssim_diversity(diverse, 30)["mean"] < 0.3


# ---- memorisation ------------------------------------------------------------------------------
def test_memorisation_flags_copies_not_fresh_images():
    train_pix = torch.rand(60, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    test_pix = torch.rand(40, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    fresh = torch.rand(20, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    copies = train_pix[:5].clone()
    fake = torch.cat([copies, fresh])
    feat = lambda x: x.reshape(len(x), -1)[:, ::7].contiguous()  # noqa: E731 - any fixed embedding
    rep = M.memorisation_check(feat(fake), fake, feat(train_pix), train_pix, feat(test_pix), test_pix)
    assert rep["near_copies"] == 5
    assert rep["near_copy_indices"] == [0, 1, 2, 3, 4]
    assert rep["pixel"]["flagged"] == 5
    assert {c["train"] for c in rep["pixel"]["closest"][:5]} == {0, 1, 2, 3, 4}
    assert rep["pixel"]["closest"][0]["distance"] == pytest.approx(0.0, abs=1e-5)
    # fresh images alone: nothing flagged (their distances are like real test images')
    rep2 = M.memorisation_check(feat(fresh), fresh, feat(train_pix), train_pix, feat(test_pix), test_pix)
    assert rep2["near_copies"] == 0 and rep2["pixel"]["nn_ratio"] == pytest.approx(1.0, abs=0.15)


# ---- the extractor ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_sets():
    imgs, labels = make_two_class_images(40, 16, seed=0)
    names = ["disc", "square"]
    return (as_dataset((imgs[::2], labels[::2], names)), as_dataset((imgs[1::2], labels[1::2], names)))


@pytest.fixture(scope="module")
def trained_ext(tiny_sets, tmp_path_factory):
    train, test = tiny_sets
    out = tmp_path_factory.mktemp("ext") / "tiny-ext"
    ext = train_domain_extractor(train, out, steps=40, seed=0, test_dataset=test, widths=(8, 16),
                                 batch_size=16, verbose=False)
    ext.saved_to = out
    return ext


def test_extractor_is_honest_and_round_trips(trained_ext, tiny_sets):
    info = trained_ext.describe()
    assert info["kind"] == "domain-cnn" and info["feature_dim"] == 16
    assert info["eval_split"] == "test" and 0.0 <= info["test_accuracy"] <= 1.0
    assert info["test_accuracy"] > 0.9  # discs vs squares is easy; a broken trainer would sit at 0.5
    loaded = load_extractor(trained_ext.saved_to)
    x = tiny_sets[1].tensor()
    f1, l1 = trained_ext.extract(x)
    f2, l2 = loaded.extract(x)
    assert torch.equal(f1, f2) and torch.equal(l1, l2)
    assert loaded.describe()["test_accuracy"] == info["test_accuracy"]
    cfg = json.loads((trained_ext.saved_to / "config.json").read_text())
    assert cfg["trained_on"]["n_images"] == len(tiny_sets[0])
    # uint8 and float [0, 1] inputs give the same features
    assert torch.allclose(loaded(x), loaded(x.float() / 255), atol=1e-5)


def test_extractor_training_is_reproducible(tiny_sets):
    a = train_domain_extractor(tiny_sets[0], None, steps=5, seed=3, widths=(4,), batch_size=8, verbose=False)
    b = train_domain_extractor(tiny_sets[0], None, steps=5, seed=3, widths=(4,), batch_size=8, verbose=False)
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    assert a.info["eval_split"].startswith("validation")


def test_extractor_needs_two_classes(tiny_sets):
    one = tiny_sets[0].select_classes(["disc"])
    with pytest.raises(Exception, match="at least 2"):
        train_domain_extractor(one, None, steps=2, verbose=False)


def test_corrupt_extractor_weights_are_a_clear_error(trained_ext, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(trained_ext.saved_to, bad)
    (bad / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ModelLoadError, match="corrupted"):
        load_extractor(bad)


def test_unknown_extractor_name_lists_the_offline_fix():
    with pytest.raises(ModelLoadError, match="train-extractor"):
        load_extractor("no-such-extractor")


def test_inception_without_local_weights_names_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty hub cache
    monkeypatch.delenv("GAN_AUGMENT_INCEPTION_WEIGHTS", raising=False)
    with pytest.raises(ModelLoadError) as err:
        load_extractor("inception")
    msg = str(err.value)
    assert "train-extractor" in msg  # the offline alternative
    assert "torch-fidelity" in msg or "weights-inception-2015-12-05" in msg


def test_inception_with_torch_fidelity_but_no_weights_names_the_paths(monkeypatch, tmp_path):
    """Even with torch-fidelity installed, nothing is downloaded: missing weights name where to put them."""
    import sys
    import types

    fake = types.ModuleType("torch_fidelity.feature_extractor_inceptionv3")
    fake.FeatureExtractorInceptionV3 = lambda *a, **k: pytest.fail("must not build (it would download)")
    monkeypatch.setitem(sys.modules, "torch_fidelity", types.ModuleType("torch_fidelity"))
    monkeypatch.setitem(sys.modules, "torch_fidelity.feature_extractor_inceptionv3", fake)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("GAN_AUGMENT_INCEPTION_WEIGHTS", raising=False)
    with pytest.raises(ModelLoadError) as err:
        load_extractor("inception")
    msg = str(err.value)
    assert str(tmp_path) in msg and "inception:/path/to/" in msg and "train-extractor" in msg


# ---- evaluate() ---------------------------------------------------------------------------------
def test_evaluate_report_structure_and_floors(trained_ext, tiny_sets):
    train, test = tiny_sets
    fresh, flabels = make_two_class_images(20, 16, seed=7)
    rep = M.evaluate((torch.as_tensor(fresh).permute(0, 3, 1, 2), flabels), train, test, trained_ext,
                     kid_subsets=5, n_pairs=20)
    json.dumps(rep, allow_nan=False)
    assert rep["extractor"]["name"] == "tiny-ext" and rep["extractor"]["kind"] == "domain-cnn"
    for key in ("fid", "kid", "precision", "recall", "density", "coverage", "ms_ssim", "domain_is"):
        assert set(rep["overall"][key]) == {"value", "floor"}, key
    assert set(rep["per_class"]) == {"disc", "square"}
    for entry in rep["per_class"].values():
        assert {"fid", "kid", "class_agreement", "ms_ssim"} <= set(entry)
        assert entry["n_synthetic"] == 20 and entry["n_real_test"] == 20
    mem = rep["overall"]["memorisation"]
    assert mem["near_copies"] == 0
    # fresh draws of the same distribution sit near the floor; copies of training images do not
    copies = train.tensor()
    rep_copy = M.evaluate((copies, train.labels), train, test, trained_ext, kid_subsets=5, n_pairs=20)
    assert rep_copy["overall"]["memorisation"]["near_copies"] == len(copies)
    assert rep_copy["overall"]["memorisation"]["pixel"]["median_nn_distance"] == pytest.approx(0.0, abs=1e-6)
    assert rep["overall"]["memorisation"]["pixel"]["median_nn_distance"] > 0.01


def test_evaluate_sees_a_bad_generator(trained_ext, tiny_sets):
    """Grey noise scores far worse than its floor on FID, precision and agreement."""
    train, test = tiny_sets
    noise = torch.rand(40, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    rep = M.evaluate((noise, np.array([0, 1] * 20)), train, test, trained_ext, kid_subsets=5, n_pairs=20)
    o = rep["overall"]
    assert o["fid"]["value"] > 3 * o["fid"]["floor"]
    assert o["kid"]["value"]["mean"] > o["kid"]["floor"]["mean"]
    assert o["precision"]["value"] < o["precision"]["floor"]


def test_evaluate_with_a_real_model(trained_ext, tiny_sets):
    import gan_augment as ga

    torch.manual_seed(0)
    model = ga.create("dcgan", image_size=16, channels=3, class_names=["square"])
    rep = M.evaluate(model, *tiny_sets, trained_ext, kid_subsets=5, n_pairs=10)
    assert rep["settings"]["classes"] == ["square"]
    assert rep["overall"]["n_synthetic"] == 20 and rep["synthetic"]["model"] == "dcgan"
    assert math.isfinite(rep["overall"]["fid"]["value"])


# ---- CLI ----------------------------------------------------------------------------------------
@pytest.fixture
def tiny_model_dir(tmp_path):
    import gan_augment as ga

    torch.manual_seed(0)
    model = ga.create("dcgan", image_size=16, channels=3, class_names=["disc"])
    return model.save_pretrained(tmp_path / "model", card=False)


def test_cli_train_extractor_and_evaluate(tiny_npz, tiny_model_dir, tmp_path, capsys):
    ext_dir = tmp_path / "ext"
    assert main(["train-extractor", "--data", str(tiny_npz), "--split", "train", "--out", str(ext_dir),
                 "--steps", "5", "--quiet"]) == 0
    assert "test accuracy" in capsys.readouterr().out
    out = tmp_path / "report.json"
    code = main(["evaluate", "--model", str(tiny_model_dir), "--data", str(tiny_npz), "--split", "test",
                 "--train-split", "train", "--extractor", str(ext_dir), "--out", str(out), "-n", "8"])
    assert code == 0
    rep = json.loads(out.read_text())
    assert rep["extractor"]["name"] == "ext" and rep["settings"]["classes"] == ["disc"]
    assert rep["overall"]["n_synthetic"] == 8
    assert "fid" in capsys.readouterr().out


@pytest.mark.parametrize("argv, needle", [
    (["--split", "train"], "held-out"),
    (["--extractor", "nope"], "train-extractor"),
    (["--classes", "triangle"], "unknown class"),
    (["--out", "report.txt"], ".json"),
])
def test_cli_bad_input_is_one_line_exit_2(tiny_npz, tiny_model_dir, tmp_path, capsys, argv, needle, trained_ext):
    base = {"--model": str(tiny_model_dir), "--data": str(tiny_npz), "--split": "test",
            "--extractor": str(trained_ext.saved_to), "--out": str(tmp_path / "r.json")}
    for k, v in zip(argv[::2], argv[1::2]):
        base[k] = v
    args = ["evaluate"] + [x for kv in base.items() for x in kv]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err


# ---- the shipped PBC extractor -------------------------------------------------------------------
HUB_EXT = Path(__file__).resolve().parents[1] / "hub" / "extractors" / "pbc-domain-cnn"


def test_shipped_pbc_extractor_loads_by_name_and_states_its_accuracy():
    if not (HUB_EXT / "config.json").is_file():
        pytest.skip("hub/extractors/pbc-domain-cnn is not present")
    ext = load_extractor("pbc-domain-cnn")
    info = ext.describe()
    assert info["name"] == "pbc-domain-cnn" and info["eval_split"] == "test"
    assert info["test_accuracy"] > 0.9 and len(ext.class_names) == 8
    assert (HUB_EXT / "model.safetensors").stat().st_size < 2_000_000
    f, lg = ext.extract(torch.zeros(2, 3, 64, 64, dtype=torch.uint8))
    assert f.shape == (2, 128) and lg.shape == (2, 8)


@pytest.mark.slow
def test_pbc_real_copies_are_flagged_and_noise_is_far_from_floor(shared_data):
    """On the real data: training images passed off as samples are all flagged; the floor is small."""
    from gan_augment.core.data import load_dataset

    p = shared_data / "pbc_bloodcell_64.npz"
    train, test = load_dataset(p, split="train"), load_dataset(p, split="test")
    ext = load_extractor("pbc-domain-cnn")
    rep = M.evaluate((train.tensor(), train.labels), train, test, ext, n=300, kid_subsets=10,
                     n_pairs=50, per_class=False)
    mem = rep["overall"]["memorisation"]
    assert mem["near_copies"] == rep["overall"]["n_synthetic"]
    assert mem["pixel"]["floor"]["flagged_fraction"] < 0.03
    noise = torch.rand(300, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    bad = M.evaluate((noise, train.labels[:300]), train, test, ext, kid_subsets=10, n_pairs=50,
                     per_class=False)
    assert bad["overall"]["fid"]["value"] > 20 * bad["overall"]["fid"]["floor"]
