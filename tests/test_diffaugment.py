"""DiffAugment: each operation's maths, per-sample and seeded randomness, gradients, the critic
wrapper, the trainer's switch (off is bit-identical) and the conformance check."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import gan_augment as ga
from gan_augment.gan import diffaugment as da
from gan_augment.gan.diffaugment import (
    AugmentedCritic,
    brightness,
    contrast,
    cutout,
    diff_augment,
    draw_params,
    parse_policy,
    resolve_policy,
    saturation,
    translate,
)
from gan_augment.training.checkpoint import CHECKPOINT_NAME, read_trainer_state
from gan_augment.training.loop import Trainer

FULL = "color,translation,cutout"


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def images(n=4, c=3, h=16, w=16, seed=0):
    return torch.rand(n, c, h, w, generator=gen(seed)) * 2 - 1


# ---- the operations ------------------------------------------------------------------------
def test_brightness_shifts_each_mean_by_its_drawn_amount():
    x = images()
    p = draw_params(["color"], x.shape, gen(3))
    y = brightness(x, p["brightness"])
    assert torch.allclose(y.mean((1, 2, 3)) - x.mean((1, 2, 3)), p["brightness"], atol=1e-6)
    assert torch.allclose(y - x, p["brightness"].view(-1, 1, 1, 1).expand_as(x), atol=1e-6)
    many = draw_params(["color"], (4000, 3, 8, 8), gen(1))
    assert -0.5 <= many["brightness"].min() < -0.49 and 0.49 < many["brightness"].max() < 0.5
    assert 0 <= many["saturation"].min() < 0.01 and 1.99 < many["saturation"].max() < 2
    assert 0.5 <= many["contrast"].min() < 0.51 and 1.49 < many["contrast"].max() < 1.5


def test_saturation_keeps_each_pixels_grey_and_scales_colour_around_it():
    x = images()
    f = torch.tensor([0.0, 0.5, 1.0, 2.0])
    y = saturation(x, f)
    assert torch.allclose(y.mean(1), x.mean(1), atol=1e-6)
    grey = x.mean(1, keepdim=True)
    assert torch.allclose(y[0], grey[0].expand(3, -1, -1), atol=1e-6)  # factor 0: grey image
    assert torch.allclose(y[2], x[2], atol=1e-6)  # factor 1: unchanged
    assert torch.allclose(y[3] - grey[3], 2 * (x[3] - grey[3]), atol=1e-5)
    one = images(c=1)
    assert torch.allclose(saturation(one, f), one, atol=1e-6)  # a grey image has no saturation


def test_contrast_keeps_each_images_mean_and_scales_its_spread():
    x = images()
    f = torch.tensor([0.5, 1.0, 1.5, 0.75])
    y = contrast(x, f)
    assert torch.allclose(y.mean((1, 2, 3)), x.mean((1, 2, 3)), atol=1e-6)
    assert torch.allclose(y.flatten(1).std(1), f * x.flatten(1).std(1), atol=1e-5)
    assert torch.allclose(y[1], x[1], atol=1e-6)


def test_translation_moves_a_bright_pixel_by_the_offset_and_fills_with_zeros():
    x = torch.full((4, 2, 16, 16), -1.0)
    x[:, :, 7, 5] = 1.0
    dy, dx = torch.tensor([0, 2, -2, 1]), torch.tensor([0, -1, 2, 2])
    y = translate(x, dy, dx)
    for i in range(4):
        r, c = 7 + int(dy[i]), 5 + int(dx[i])
        assert torch.all(y[i, :, r, c] == 1.0), i
        assert int((y[i] == 1.0).sum()) == 2  # one pixel, two channels
    ones = torch.ones(1, 1, 8, 8)
    y = translate(ones, torch.tensor([2]), torch.tensor([-1]))[0, 0]
    assert torch.all(y[:2] == 0) and torch.all(y[:, -1] == 0)  # moved in from outside: zeros
    assert torch.all(y[2:, :-1] == 1) and int((y == 0).sum()) == 2 * 8 + 6
    gone = translate(x[:1], torch.tensor([9]), torch.tensor([0]))
    assert int((gone == 1.0).sum()) == 0


def test_random_translation_stays_within_an_eighth_and_uses_the_drawn_offsets():
    x = torch.zeros(64, 1, 16, 24)
    x[:, :, 8, 12] = 1.0
    p = draw_params(["translation"], x.shape, gen(4))
    assert p["shift_y"].abs().max() == 2 and p["shift_x"].abs().max() == 3  # 16 // 8, 24 // 8
    assert p["shift_y"].min() == -2 and p["shift_x"].min() == -3
    y = diff_augment(x, "translation", gen(4))
    for i in range(64):
        hit = (y[i, 0] == 1.0).nonzero().tolist()
        assert hit == [[8 + int(p["shift_y"][i]), 12 + int(p["shift_x"][i])]]


def test_cutout_zeroes_exactly_the_stated_rectangle():
    x = torch.ones(3, 2, 16, 12)
    y = cutout(x, torch.tensor([2, -3, 13]), torch.tensor([1, 0, 9]), (8, 6))
    assert int((y[0, 0] == 0).sum()) == 8 * 6
    assert torch.all(y[0, :, 2:10, 1:7] == 0)
    assert int((y[1, 0] == 0).sum()) == 5 * 6 and torch.all(y[1, :, :5, :6] == 0)  # clipped at the top
    assert int((y[2, 0] == 0).sum()) == 3 * 3 and torch.all(y[2, :, 13:, 9:] == 0)  # at the corner


def test_random_cutout_is_half_the_size_and_matches_its_drawn_position():
    h, w = 15, 13  # odd sizes: a 7 x 6 rectangle
    x = torch.ones(200, 1, h, w)
    p = draw_params(["cutout"], x.shape, gen(2))
    y = diff_augment(x, "cutout", gen(2))
    for i in range(200):
        t, lf = int(p["cut_top"][i]), int(p["cut_left"][i])
        rows = [r for r in range(t, t + 7) if 0 <= r < h]
        cols = [c for c in range(lf, lf + 6) if 0 <= c < w]
        zeros = set(map(tuple, (y[i, 0] == 0).nonzero().tolist()))
        assert zeros == {(r, c) for r in rows for c in cols}
        assert len(rows) >= 4 and len(cols) >= 3  # at least half of each side lies inside
    centres = p["cut_top"] + 7 // 2
    assert centres.min() == 0 and centres.max() == h - 1  # the centre ranges over the whole image


def test_the_composed_policy_is_the_ops_in_order_with_one_draw():
    x = images()
    p = draw_params(["color", "translation", "cutout"], x.shape, gen(9))
    manual = brightness(x, p["brightness"])
    manual = contrast(saturation(manual, p["saturation"]), p["contrast"])
    manual = translate(manual, p["shift_y"], p["shift_x"])
    manual = cutout(manual, p["cut_top"], p["cut_left"], (8, 8))
    assert torch.equal(diff_augment(x, FULL, gen(9)), manual)


# ---- randomness ----------------------------------------------------------------------------
@pytest.mark.parametrize("policy", ["color", "translation", "cutout", FULL])
def test_each_sample_gets_its_own_draw(policy):
    one = images(1, seed=5)
    y = diff_augment(one.expand(2, -1, -1, -1).clone(), policy, gen(0))
    assert not torch.equal(y[0], y[1])


def test_same_seed_same_augmentation_and_the_global_rng_is_untouched():
    x = images()
    torch.manual_seed(1)
    state = torch.get_rng_state()
    a = diff_augment(x, FULL, gen(11))
    assert torch.equal(torch.get_rng_state(), state), "DiffAugment drew from the global RNG"
    torch.manual_seed(2)
    b = diff_augment(x, FULL, gen(11))
    assert torch.equal(a, b)
    assert not torch.equal(a, diff_augment(x, FULL, gen(12)))
    with pytest.raises(ga.ConfigError, match="torch.Generator"):
        diff_augment(x, FULL, None)


def test_none_is_the_identity_and_draws_nothing():
    x = images()
    for off in ("none", "", None, "None", "off", []):
        g = gen(0)
        state = g.get_state()
        assert diff_augment(x, off, g) is x
        assert torch.equal(g.get_state(), state)


# ---- gradients, dtypes, shapes -------------------------------------------------------------
def test_gradients_flow_to_the_input():
    x = images().requires_grad_(True)
    w = torch.rand(x.shape, generator=gen(1))
    (diff_augment(x, FULL, gen(3)) * w).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    # translation alone: a kept pixel's gradient is the weight where it landed
    x2 = images().requires_grad_(True)
    p = draw_params(["translation"], x2.shape, gen(4))
    (diff_augment(x2, "translation", gen(4)) * w).sum().backward()
    i = 0
    dy, dx = int(p["shift_y"][i]), int(p["shift_x"][i])
    assert torch.isclose(x2.grad[i, 0, 8, 8], w[i, 0, 8 + dy, 8 + dx])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("shape", [(3, 1, 16, 16), (2, 3, 28, 20), (2, 3, 7, 9)])
def test_dtype_device_and_shape_are_kept(dtype, shape):
    x = torch.rand(shape, generator=gen(0)).to(dtype)
    y = diff_augment(x, FULL, gen(1))
    assert y.dtype == dtype and y.shape == x.shape and y.device == x.device
    assert torch.isfinite(y.float()).all()


def test_bf16_autocast_keeps_dtypes():
    x = images()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = diff_augment(x, FULL, gen(0))
        z = diff_augment(x.bfloat16(), FULL, gen(0))
    assert y.dtype == torch.float32 and z.dtype == torch.bfloat16


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_generator_and_tensors():
    x = images().cuda()
    g = torch.Generator(device="cuda").manual_seed(0)
    y = diff_augment(x, FULL, g)
    assert y.device == x.device
    assert torch.equal(y, diff_augment(x, FULL, torch.Generator(device="cuda").manual_seed(0)))
    # a CPU generator also works with CUDA images (the trainer's choice on some devices)
    assert diff_augment(x, FULL, gen(0)).device == x.device


# ---- policies ------------------------------------------------------------------------------
def test_policy_parsing_and_clear_errors():
    assert parse_policy(FULL) == ("color", "translation", "cutout")
    assert parse_policy(" cutout , color ") == ("cutout", "color")
    with pytest.raises(ga.ConfigError, match=r"'colour'.*Did you mean 'color'\?.*color, translation, cutout"):
        parse_policy("colour,translation")
    with pytest.raises(ga.ConfigError, match="Did you mean 'translation'"):
        parse_policy("color,translaton")
    with pytest.raises(ga.ConfigError, match="twice"):
        parse_policy("cutout,cutout")
    with pytest.raises(ga.ConfigError, match="Valid ops"):
        parse_policy("auto")  # 'auto' is the trainer's word, resolved before parsing
    with pytest.raises(ga.ConfigError, match="a string"):
        parse_policy(3)


def test_auto_is_on_below_1000_training_images_only():
    assert resolve_policy("auto", 999) == parse_policy(FULL)
    assert resolve_policy("auto", 1000) == ()
    assert resolve_policy("auto", 2557) == ()  # the PBC hard setting: measured better off
    assert resolve_policy("cutout", 10**6) == ("cutout",)
    assert resolve_policy("none", 10) == ()


# ---- the critic wrapper --------------------------------------------------------------------
def critic(channels=3, size=16, num_classes=0):
    torch.manual_seed(0)
    return ga.nets.ConvDiscriminator(channels, size, width=4, norm="layer", num_classes=num_classes)


def test_wrapper_passes_gradients_to_the_critic_and_the_input():
    D = critic()
    wrapped = AugmentedCritic(D, FULL, rng=gen(0))
    x = images().requires_grad_(True)
    wrapped(x).sum().backward()
    assert x.grad.abs().sum() > 0
    for name, p in D.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_wrapper_sees_augmented_inputs_forwards_labels_and_keeps_the_state_dict():
    D = critic(num_classes=2)
    seen = []
    D.register_forward_pre_hook(lambda mod, args: seen.append(args[0].clone()))
    wrapped = AugmentedCritic(D, FULL, rng=gen(7))
    x, labels = images(), torch.tensor([0, 1, 1, 0])
    out = wrapped(x, labels)
    assert torch.equal(seen[-1], diff_augment(x, FULL, gen(7)))
    assert torch.equal(out, D(seen[-1], labels))
    assert list(wrapped.state_dict()) == list(D.state_dict())  # no "critic." prefix
    other = critic(num_classes=2)
    nn.init.constant_(other.head.weight, 0.5)
    wrapped.load_state_dict(other.state_dict())
    assert torch.equal(D.head.weight, other.head.weight)
    assert wrapped.feature_dim == D.feature_dim  # other attributes come from the critic
    assert wrapped.policy == FULL and AugmentedCritic(D, "none").policy is None
    with pytest.raises(ga.ConfigError, match="no generator"):
        AugmentedCritic(D, FULL)(x, labels)
    with pytest.raises(ga.ConfigError, match="already wrapped"):
        AugmentedCritic(wrapped)


def test_wrapper_with_none_is_the_critic_itself():
    D = critic()
    x = images()
    g = gen(0)
    state = g.get_state()
    assert torch.equal(AugmentedCritic(D, "none", rng=g)(x), D(x))
    assert torch.equal(g.get_state(), state)


def test_gradient_penalty_interpolates_pass_through_the_policy():
    D = critic()
    seen = []
    D.register_forward_pre_hook(lambda mod, args: seen.append(args[0].detach().clone()))
    wrapped = AugmentedCritic(D, "cutout", rng=gen(0))
    real, fake = images(seed=1), images(seed=2)
    gp = ga.losses.gradient_penalty(wrapped, real, fake, wrapped.rng)
    assert torch.isfinite(gp) and gp > 0
    x_hat = seen[-1]
    assert all(int((x_hat[i] == 0).sum()) >= 3 * 16 for i in range(4))  # a zeroed block each
    assert int((real == 0).sum()) == 0


# ---- the trainer ---------------------------------------------------------------------------
TINY = dict(image_size=16, width=8, latent_dim=8)
FAST = dict(steps=2, batch_size=8, progress=False, log_every=1, sample_every=0, grid_size=4, seed=0)


def train(data, backend="dcgan", **cfg):
    torch.manual_seed(0)
    m = ga.create(backend, **TINY)
    trainer = Trainer(m, **{**FAST, **cfg})
    trainer.fit(data)
    return m, trainer


def all_weights(m):
    return {**{"G." + k: v for k, v in m.generator.state_dict().items()},
            **{"D." + k: v for k, v in m.discriminator.state_dict().items()}}


@pytest.mark.parametrize("backend", ["dcgan", "wgan-gp"])
def test_off_is_bit_identical_to_training_without_the_wrapper_path(tiny_npz, monkeypatch, backend):
    data = ga.load_dataset(tiny_npz, split="train", classes=["disc"])
    off, t_off = train(data, backend, diffaugment="none")
    assert t_off.diffaugment is None and off.training_summary["diffaugment"] is None
    also_off, _ = train(data, backend, diffaugment=None)
    on, t_on = train(data, backend, diffaugment=FULL)
    assert t_on.diffaugment == FULL and on.training_summary["diffaugment"] == FULL
    with monkeypatch.context() as mp:  # the loop exactly as before: no wrapping asked for at all
        mp.setattr(ga.AdversarialAugmenter, "augmented_critic", lambda self, D, setting, n: None)
        plain, _ = train(data, backend)
    a, b, c, d = all_weights(off), all_weights(plain), all_weights(also_off), all_weights(on)
    assert a.keys() == b.keys() == d.keys()
    assert all(torch.equal(a[k], b[k]) and torch.equal(a[k], c[k]) for k in a)
    assert any(not torch.equal(a[k], d[k]) for k in a if a[k].is_floating_point())


def test_auto_turns_on_for_small_data_and_is_said_once(tiny_npz, monkeypatch, capsys):
    data = ga.load_dataset(tiny_npz, split="train")
    m, t = train(data, progress=True, steps=1)
    assert t.diffaugment == FULL
    err = capsys.readouterr().err
    assert err.count("DiffAugment: color,translation,cutout (diffaugment='auto', 24 training images)") == 1
    monkeypatch.setattr(da, "SMALL_DATA_IMAGES", len(data))
    _, t2 = train(data, steps=1)
    assert t2.diffaugment is None


def test_policy_is_recorded_in_checkpoint_and_summary_and_typos_fail(tiny_npz, tmp_path):
    data = ga.load_dataset(tiny_npz, split="train")
    m, _ = train(data, diffaugment="translation,cutout", out_dir=str(tmp_path / "run"))
    assert read_trainer_state(tmp_path / "run" / CHECKPOINT_NAME)["diffaugment"] == "translation,cutout"
    assert m.training_summary["diffaugment"] == "translation,cutout"
    assert m.training_summary["train_config"]["diffaugment"] == "translation,cutout"
    with pytest.raises(ga.ConfigError, match="Did you mean 'cutout'"):
        train(data, diffaugment="cutuot")
    with pytest.raises(ga.ConfigError, match="diffaugment must be"):
        train(data, diffaugment=["cutout"])


def test_resume_with_another_policy_warns(tiny_npz, tmp_path):
    data = ga.load_dataset(tiny_npz, split="train")
    train(data, stop_at=1, out_dir=str(tmp_path / "r"), diffaugment="cutout")
    with pytest.warns(UserWarning, match="trained with DiffAugment cutout and this run uses off"):
        train(data, resume=True, out_dir=str(tmp_path / "r"), diffaugment="none")


def test_auto_on_resume_continues_the_checkpoints_policy_even_after_the_rule_changed(
        tiny_npz, tmp_path, monkeypatch, recwarn):
    data = ga.load_dataset(tiny_npz, split="train")
    train(data, stop_at=1, out_dir=str(tmp_path / "r"))  # "auto": on for 24 images
    monkeypatch.setattr(da, "SMALL_DATA_IMAGES", len(data))  # the rule now says off for this data
    _, fresh = train(data, steps=1)
    _, resumed = train(data, resume=True, out_dir=str(tmp_path / "r"))
    assert fresh.diffaugment is None and resumed.diffaugment == FULL
    assert not [w for w in recwarn if "DiffAugment" in str(w.message)]
    train(data, stop_at=1, out_dir=str(tmp_path / "n"), diffaugment="cutout")
    with pytest.warns(UserWarning, match="trained with DiffAugment cutout and this run uses translation"):
        train(data, resume=True, out_dir=str(tmp_path / "n"), diffaugment="translation")


def test_cli_opt_turns_it_off(tiny_npz, tmp_path):
    from gan_augment.cli import main

    base = ["train", "--backend", "dcgan", "--data", str(tiny_npz), "--split", "train", "--image-size", "16",
            "--steps", "1", "--batch-size", "8", "--quiet", "--opt", "width=8", "--opt", "latent_dim=8"]
    assert main([*base, "--out", str(tmp_path / "on")]) == 0
    assert main([*base, "--out", str(tmp_path / "off"), "--opt", "diffaugment=none"]) == 0
    assert read_trainer_state(tmp_path / "on" / CHECKPOINT_NAME)["diffaugment"] == FULL
    off = read_trainer_state(tmp_path / "off" / CHECKPOINT_NAME)
    assert off["diffaugment"] is None and off["train_config"]["diffaugment"] == "none"
    assert main([*base, "--out", str(tmp_path / "bad"), "--opt", "diffaugment=colour"]) == 2


# ---- the conformance kit -------------------------------------------------------------------
WGANGP = ga.backend_info("wgan-gp").cls


class BypassesTheWrapper(WGANGP):
    """Scores real images with its own discriminator instead of the critic it is given."""

    name = "broken-diffaugment"

    def discriminator_loss(self, G, D, real, labels, ctx):
        return super().discriminator_loss(G, self.discriminator, real, labels, ctx)


def test_the_kit_checks_that_the_critic_sees_augmented_images(tmp_path):
    from gan_augment.testing import backend_checks

    good = {c.name: c for c in backend_checks("wgan-gp", config={"width": 8, "latent_dim": 8})}
    good["diffaugment"](tmp_path / "good")
    broken = {c.name: c for c in backend_checks(BypassesTheWrapper, config={"width": 8, "latent_dim": 8})}
    with pytest.raises(AssertionError, match="DiffAugment"):
        broken["diffaugment"](tmp_path / "broken")


def test_min_cutout_overlap_formula():
    """The kit's threshold: at least ceil(side / 2) rows and columns of the cutout lie inside."""
    for h in range(2, 40):
        ch = da.cutout_size(h, h)[0]
        p = draw_params(["cutout"], (2000, 1, h, h), gen(h))
        inside = torch.minimum(p["cut_top"] + ch, torch.tensor(h)) - p["cut_top"].clamp(min=0)
        assert int(inside.min()) == math.ceil(ch / 2)
