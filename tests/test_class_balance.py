"""class_balance: batches that reach a rare class more often, drawn as a pure function of
(labels, power, seed, epoch) so resume stays exact; recorded on the card."""

from __future__ import annotations

import math

import pytest
import torch

import gan_augment as ga
from gan_augment.core.errors import ConfigError
from gan_augment.training.batches import BatchSource
from gan_augment.training.config import TrainConfig, balanced_epoch
from gan_augment.training.loop import Trainer

RARE, COMMON = 19, 981


def shares(power: float, epochs: int = 30) -> float:
    labels = torch.tensor([0] * RARE + [1] * COMMON)
    drawn = torch.cat([balanced_epoch(labels, power, seed=0, epoch=e) for e in range(epochs)])
    assert len(drawn) == epochs * len(labels)
    return float((labels[drawn] == 0).float().mean())


@pytest.mark.parametrize("power", [1.0, 0.5])
def test_class_shares_follow_count_to_the_one_minus_power(power):
    expected = RARE ** (1 - power) / (RARE ** (1 - power) + COMMON ** (1 - power))
    assert math.isclose(shares(power), expected, abs_tol=0.02)


def test_power_zero_weights_every_image_alike():
    assert math.isclose(shares(0.0), RARE / (RARE + COMMON), abs_tol=0.01)


def test_the_draw_is_a_function_of_seed_and_epoch():
    labels = torch.tensor([0, 0, 1, 1, 1, 1, 2] * 5)
    a, b = balanced_epoch(labels, 1.0, 3, 7), balanced_epoch(labels, 1.0, 3, 7)
    assert torch.equal(a, b)
    assert not torch.equal(a, balanced_epoch(labels, 1.0, 3, 8))
    assert not torch.equal(a, balanced_epoch(labels, 1.0, 4, 7))


def test_batch_source_draws_balanced_batches_and_plain_order_is_unchanged():
    labels = torch.tensor([0] * 4 + [1] * 60)
    images = torch.zeros(64, 1, 4, 4, dtype=torch.uint8)
    plain = BatchSource(images, labels, 16, seed=0, device=torch.device("cpu"))
    balanced = BatchSource(images, labels, 16, seed=0, device=torch.device("cpu"), class_balance=1.0)
    rare_plain = sum(int((plain(k)[1] == 0).sum()) for k in range(40))
    rare_balanced = sum(int((balanced(k)[1] == 0).sum()) for k in range(40))
    assert rare_plain == 10 * 4  # every image once per epoch of 4 batches
    assert 0.4 < rare_balanced / (40 * 16) < 0.6


@pytest.mark.parametrize("bad", [-0.1, 1.5, True, "1"])
def test_bad_class_balance_is_one_clear_error(bad):
    with pytest.raises(ConfigError, match="class_balance must be a number from 0"):
        TrainConfig.build({}, {"steps": 1, "class_balance": bad})


def test_resume_is_exact_and_the_card_says_it(tiny_npz, tmp_path):
    data = ga.load_dataset(tiny_npz, split="train")
    fast = dict(batch_size=8, progress=False, sample_every=0, grid_size=4, class_balance=1.0)

    def model(seed=0):
        torch.manual_seed(seed)
        return ga.create("cwgan-gp", image_size=16, width=8, latent_dim=8, class_names=data.class_names)

    straight = model()
    Trainer(straight, steps=6, out_dir=str(tmp_path / "a"), **fast).fit(data)
    staged = model()
    Trainer(staged, steps=6, stop_at=3, out_dir=str(tmp_path / "b"), **fast).fit(data)
    resumed = model(seed=9)
    Trainer(resumed, steps=6, resume=True, out_dir=str(tmp_path / "b"), **fast).fit(data)
    for (k, a), b in zip(straight.generator.state_dict().items(), resumed.generator.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), k
    resumed.save_pretrained(tmp_path / "model")
    assert "- class balance 1: images drawn with probability proportional" in (tmp_path / "model" / "README.md").read_text()
