"""The shortcut probe (gan_augment.eval.separability) on real PBC cells: a generator that hands out
real images the probe has not seen scores about 0.5, one that outputs noise about 1.0."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import gan_augment as ga
from gan_augment import metrics as M
from gan_augment.cli import main
from gan_augment.eval.separability import probe_net, separability

pytestmark = pytest.mark.usefixtures("one_thread")


class CopyGenerator(ga.GenerativeAugmenter):
    """Conditional: each "sample" is a real image of the asked class, drawn from ``pool`` (real PBC
    cells that are not in the split it is compared with): what a perfect generator would give."""

    name = "copy"
    conditional = True

    def __init__(self, pool: ga.ImageDataset | None = None, **cfg):
        super().__init__(**cfg)
        self.pool = pool

    def fit(self, data, **kw):
        return self

    def sample(self, n, labels=None, generator=None):
        lab = self.resolve_labels(n, labels, generator)
        x = self.pool.tensor().float() / 255
        out = []
        for k in lab.tolist():
            rows = np.nonzero(self.pool.labels == k)[0]
            out.append(x[int(rows[torch.randint(len(rows), (1,), generator=generator)])])
        return torch.stack(out)

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


class NoiseGenerator(CopyGenerator):
    name = "noise"

    def sample(self, n, labels=None, generator=None):
        self.resolve_labels(n, labels, generator)
        return torch.rand(n, 3, 64, 64, generator=generator)


@pytest.fixture(scope="module")
def pbc():
    from conftest import SHARED

    if not (SHARED / "pbc_bloodcell_64_eval.npz").exists():
        pytest.skip("../shared/data is not present")
    train = ga.load_dataset(SHARED / "pbc_bloodcell_64.npz", split="train")
    test = ga.load_dataset(SHARED / "pbc_bloodcell_64.npz", split="test")
    pool = ga.load_dataset(SHARED / "pbc_bloodcell_64_eval.npz", split="val")
    return train, test, pool


def run_probe(gen_cls, pbc):
    train, test, pool = pbc
    gen = gen_cls(pool, image_size=64, class_names=train.class_names)
    return M.evaluate(gen, train, test, "pbc-domain-cnn", classes=["basophil"], n=96, kid_subsets=5,
                      n_pairs=10)


def test_a_generator_that_copies_real_images_is_indistinguishable(pbc):
    rep = run_probe(CopyGenerator, pbc)
    sep = rep["separability"]["per_class"]["basophil"]
    assert sep["n_real"] == sep["n_synthetic"] == 96
    # 48 vs 48 held-out images: null_sd 0.059, so 0.5 +- 0.15 is about 2.5 standard deviations
    assert abs(sep["auc"] - 0.5) < 0.15, sep
    assert rep["per_class"]["basophil"]["separability"] == sep
    assert rep["overall"]["separability"]["value"]["mean"] == pytest.approx(sep["auc"])
    # the floor: the same probe between real train and real test basophils (48 of them here)
    assert sep["floor_n"] == 48 and abs(sep["floor"] - 0.5) < 0.2, sep
    assert rep["overall"]["separability"]["floor"]["mean"] == pytest.approx(sep["floor"])
    json.dumps(rep, allow_nan=False)
    assert "separability" in M.summary_table(rep)


def test_a_generator_that_outputs_noise_is_told_apart(pbc):
    sep = run_probe(NoiseGenerator, pbc)["separability"]
    assert sep["per_class"]["basophil"]["auc"] > 0.95 and sep["max_class"] == "basophil"


def test_the_probe_is_seeded_and_scores_held_out_halves():
    g = torch.Generator().manual_seed(0)
    real = torch.randint(0, 256, (40, 3, 16, 16), dtype=torch.uint8, generator=g)
    fake = torch.rand(40, 3, 16, 16, generator=g)
    a, b = separability(real, fake, seed=3), separability(real, fake, seed=3)
    assert a == b and len(a["folds"]) == 2 and a["auc"] == pytest.approx(sum(a["folds"]) / 2)
    assert a["n_real"] == 40 and a["null_sd"] == pytest.approx(np.sqrt(41 / (12 * 20 * 20)))
    assert separability(real, fake, max_per_side=10)["n_real"] == 10
    assert sum(p.numel() for p in probe_net(3).parameters()) < 30_000  # small, CPU-fast


def test_too_few_images_or_mismatched_shapes_are_clear_errors():
    with pytest.raises(ga.DataError, match="at least 4 real and 4 synthetic"):
        separability(torch.rand(3, 3, 8, 8), torch.rand(10, 3, 8, 8))
    with pytest.raises(ga.DataError, match="one shape"):
        separability(torch.rand(10, 3, 8, 8), torch.rand(10, 3, 16, 16))


def test_evaluate_can_skip_the_probe_and_the_cli_prints_it(tiny_npz, tmp_path, capsys):
    from conftest import make_two_class_images

    train = ga.load_dataset(tiny_npz, split="train")
    test = ga.load_dataset(tiny_npz, split="test")
    fresh, flabels = make_two_class_images(20, 16, seed=7)
    ext = M.train_domain_extractor(train, tmp_path / "ext", steps=5, verbose=False)
    args = ((torch.as_tensor(fresh).permute(0, 3, 1, 2), flabels), train, test, ext)
    off = M.evaluate(*args, kid_subsets=5, n_pairs=5, separability=False)
    assert "separability" not in off and "separability" not in off["overall"]
    on = M.evaluate(*args, kid_subsets=5, n_pairs=5)
    assert set(on["separability"]["per_class"]) == {"disc", "square"}
    model = ga.create("dcgan", image_size=16, channels=3, class_names=["disc"])
    model.save_pretrained(tmp_path / "model", card=False)
    out = tmp_path / "r.json"
    assert main(["evaluate", "--model", str(tmp_path / "model"), "--data", str(tiny_npz), "--extractor",
                 str(tmp_path / "ext"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "separability" in printed and "disc " in printed.split("separability", 1)[1]
    assert json.loads(out.read_text())["separability"]["per_class"]["disc"]["auc"] is not None


def test_separability_reaches_the_model_card_and_info(tiny_npz, tmp_path, capsys):
    """publish_model.py's card metrics carry the probe's mean beside 0.5, the card lists it, and
    `gan-augment info` says which way is better."""
    import importlib.util
    from pathlib import Path

    from gan_augment.cli.hub import print_metrics

    spec = importlib.util.spec_from_file_location(
        "publish_model", Path(__file__).parents[1] / "examples" / "publish_model.py")
    publish = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(publish)
    train, test = ga.load_dataset(tiny_npz, split="train"), ga.load_dataset(tiny_npz, split="test")
    ext = M.train_domain_extractor(train, tmp_path / "ext", steps=5, verbose=False)
    noise = torch.rand(24, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    rep = M.evaluate((noise, np.array([0, 1] * 12)), train, test, ext, kid_subsets=5, n_pairs=5)
    card = publish.card_metrics(rep)
    assert card["separability"] == {"value": rep["separability"]["mean"], "floor": rep["separability"]["floor_mean"]}
    model = ga.create("dcgan", image_size=16, channels=3, class_names=["disc"])
    folder = model.save_pretrained(tmp_path / "m", metrics=card)
    assert "separability" in (Path(folder) / "README.md").read_text()
    print_metrics(card)
    assert "near 0.5" in capsys.readouterr().out
