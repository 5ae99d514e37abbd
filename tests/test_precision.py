"""Speed without changed maths: the precision rule, the gradient penalty under autocast, fused
critic passes, one generator forward per DCGAN step, one scaler per optimiser, the resident data
path, the time estimate, and sampling under inference mode."""

import json

import pytest
import torch
from conftest import detect_native_bf16
from safetensors import safe_open
from safetensors.torch import save_file

import gan_augment as ga
from gan_augment.gan import losses
from gan_augment.gan.nets import ConvDiscriminator
from gan_augment.testing.toy import toy_two_class_data
from gan_augment.training import precision, timing
from gan_augment.training.batches import BatchSource
from gan_augment.training.checkpoint import CHECKPOINT_NAME
from gan_augment.training.config import epoch_permutation
from gan_augment.training.loop import Trainer

CPU = torch.device("cpu")


# ---- which precision -----------------------------------------------------------------------
def test_explicit_precisions_are_kept_and_unknown_ones_refused():
    assert precision.resolve_precision("fp32", CPU) is None
    assert precision.resolve_precision("bf16", CPU) is torch.bfloat16
    assert precision.resolve_precision("fp16", CPU) is torch.float16
    with pytest.raises(ga.ConfigError, match="precision must be one of"):
        precision.resolve_precision("half", CPU)


@pytest.mark.parametrize("native,expected", [(True, torch.bfloat16), (False, None)])
def test_auto_on_cpu_follows_native_bf16(monkeypatch, native, expected):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    assert precision.resolve_precision("auto", CPU) is expected
    note = precision.describe(expected, "auto", CPU)
    assert ("no native bf16" in note) == (not native)


@pytest.mark.parametrize("bf16_ok,expected", [(True, torch.bfloat16), (False, torch.float16)])
def test_auto_on_cuda_is_bf16_where_supported_else_fp16(monkeypatch, bf16_ok, expected):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16_ok)
    assert precision.resolve_precision("auto", torch.device("cuda")) is expected


@pytest.mark.parametrize("caps,onednn,expected", [
    ({"avx2": True, "avx512_bf16": False, "amx_bf16": False}, True, False),  # AVX2 only: emulated
    ({"avx2": True, "avx512_bf16": True}, True, True),
    ({"amx_bf16": True}, True, True),
    ({"avx512_bf16": True}, False, False),  # the instructions but a oneDNN without bf16
])
def test_native_bf16_is_detected_from_capabilities_not_the_vendor(monkeypatch, caps, onednn, expected):
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: caps, raising=False)
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: True)

    class Ops:
        @staticmethod
        def _is_mkldnn_bf16_supported():
            return onednn

    monkeypatch.setattr(torch.ops, "mkldnn", Ops, raising=False)
    assert detect_native_bf16() is expected  # the real detection, even when the suite forces one


def test_channels_last_auto_is_on_for_cpu_only_and_can_be_forced():
    assert precision.use_channels_last("auto", CPU) is True
    assert precision.use_channels_last("auto", torch.device("cuda")) is False
    assert precision.use_channels_last(False, CPU) is False
    assert precision.use_channels_last(True, torch.device("cuda")) is True
    with pytest.raises(ga.ConfigError, match="channels_last"):
        ga.TrainConfig(steps=1, channels_last="yes").validate()


# ---- the gradient penalty under autocast ------------------------------------------------------
def _fixed_inputs():
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)  # the critic's initial weights too: the same inputs on every run
    critic = ConvDiscriminator(3, 16, width=8, norm="layer")
    real = torch.rand(8, 3, 16, 16, generator=g) * 2 - 1
    fake = torch.rand(8, 3, 16, 16, generator=g) * 2 - 1
    return critic, real, fake


def _gp(critic, real, fake, dtype):
    rng = torch.Generator().manual_seed(3)
    with precision.autocast(CPU, dtype):
        gp = losses.gradient_penalty(critic, real, fake, rng)
    gp.backward()
    grads = torch.cat([p.grad.flatten() for p in critic.parameters() if p.grad is not None])
    critic.zero_grad(set_to_none=True)
    return gp, grads


def test_gradient_penalty_under_bf16_matches_fp32_within_two_percent():
    critic, real, fake = _fixed_inputs()
    gp32, grads32 = _gp(critic, real, fake, None)
    gp16, grads16 = _gp(critic, real, fake, torch.bfloat16)
    assert gp16.dtype == torch.float32  # norm and loss in fp32
    assert gp16.item() == pytest.approx(gp32.item(), rel=0.02)
    cos = torch.nn.functional.cosine_similarity(grads16, grads32, dim=0)
    assert cos > 0.99, f"the penalty's gradient turned by {torch.rad2deg(torch.acos(cos)):.1f} degrees"


def test_gradient_penalty_under_fp16_runs_the_critic_in_fp32():
    """fp16 input gradients can underflow unscaled, so that branch keeps fp32: equal to fp32."""
    critic, real, fake = _fixed_inputs()
    gp32, grads32 = _gp(critic, real, fake, None)
    gp16, grads16 = _gp(critic, real, fake, torch.float16)
    assert gp16.item() == pytest.approx(gp32.item(), rel=1e-5)
    assert torch.allclose(grads16, grads32, rtol=1e-4, atol=1e-6)


def test_gradient_penalty_checks_its_maths_on_a_linear_critic():
    """D(x) = <w, x> has gradient w everywhere, so the penalty is (||w|| - 1)^2 exactly."""
    w = torch.full((1, 3, 4, 4), 0.5)
    critic = lambda x: (x * w).flatten(1).sum(1)  # noqa: E731
    real, fake = torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4)
    for dtype in (None, torch.bfloat16):
        with precision.autocast(CPU, dtype):
            gp = losses.gradient_penalty(critic, real, fake, torch.Generator().manual_seed(0))
        assert gp.item() == pytest.approx((w.norm().item() - 1) ** 2, rel=1e-2)


# ---- fused critic passes ---------------------------------------------------------------------
def test_fused_critic_scores_equal_separate_passes_for_a_per_sample_critic():
    critic, real, fake = _fixed_inputs()
    assert losses.per_sample(critic)
    sep = losses.critic_scores(critic, real, fake, fuse=False)
    fused = losses.critic_scores(critic, real, fake, fuse=True)
    for a, b in zip(sep, fused):
        assert torch.allclose(a, b, atol=1e-5)


def test_a_batch_norm_critic_is_never_fused():
    """Batch statistics couple the samples: one pass over real+fake would change D's outputs."""
    critic = ConvDiscriminator(3, 16, width=8, norm="batch")
    assert not losses.per_sample(critic)
    calls = []
    critic.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    _, real, fake = _fixed_inputs()
    losses.critic_scores(critic, real, fake, fuse=True)
    assert calls == [8, 8]


# ---- the trainer ------------------------------------------------------------------------------
def test_dcgan_runs_its_generator_forward_once_per_step():
    data = toy_two_class_data(16, 16, 1, seed=0)
    m = ga.create("dcgan", image_size=16, channels=1, width=8, latent_dim=8)
    kind = type(m.generator)  # fit may rebuild the network: count calls of any module of its type
    calls = []
    hook = torch.nn.modules.module.register_module_forward_hook(
        lambda mod, i, o: calls.append(1) if type(mod) is kind else None)
    try:
        m.fit(data, steps=3, batch_size=8, progress=False, seed=0, diffaugment="none", sample_every=0)
    finally:
        hook.remove()
    assert len(calls) == 3


def test_one_grad_scaler_per_optimiser_and_old_single_scaler_checkpoints_still_resume(tmp_path):
    data = toy_two_class_data(16, 16, 1, seed=0)
    kw = dict(batch_size=8, progress=False, seed=0, out_dir=str(tmp_path), checkpoint_every=2, sample_every=0)
    m = ga.create("wgan-gp", image_size=16, channels=1, width=8, latent_dim=8)
    t = Trainer(m, steps=2, **kw)
    t.fit(data)
    assert t.scaler_d is not t.scaler_g
    # rewrite the checkpoint the way older versions wrote it: one "scaler" for both optimisers
    path = tmp_path / CHECKPOINT_NAME
    with safe_open(str(path), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        state = json.loads(f.metadata()["trainer_state"])
    sk = state["skeleton"]
    sk["scaler"] = sk.pop("scaler_d")
    del sk["scaler_g"]
    save_file(tensors, str(path), metadata={"trainer_state": json.dumps(state)})
    m2 = ga.create("wgan-gp", image_size=16, channels=1, width=8, latent_dim=8)
    t2 = Trainer(m2, steps=4, resume=True, **kw)
    t2.fit(data)
    assert t2.step == 4


def test_batches_follow_the_epoch_permutation_and_stay_on_the_device():
    images = torch.randint(0, 256, (10, 1, 4, 4), dtype=torch.uint8)
    labels = torch.arange(10)
    src = BatchSource(images, labels, batch_size=4, seed=3, device=CPU)
    assert src.resident and src.batches_per_epoch == 2
    perm1 = epoch_permutation(10, 3, 1)
    x, y = src(3)  # epoch 1, second batch
    assert torch.equal(y, perm1[4:8])
    assert torch.allclose(x, images[perm1[4:8]].float() / 127.5 - 1)
    assert src(0)[0].dtype == torch.float32


def test_channels_last_training_saves_weights_that_load_anywhere(tmp_path):
    data = toy_two_class_data(16, 16, 1, seed=0)
    m = ga.create("wgan-gp", image_size=16, channels=1, width=8, latent_dim=8)
    t = Trainer(m, steps=2, batch_size=8, progress=False, seed=0, channels_last=True)
    kind, seen = type(m.generator), []  # fit may rebuild the network: watch every module of its type
    hook = torch.nn.modules.module.register_module_forward_pre_hook(
        lambda mod, args: seen.append(next(mod.parameters()).is_contiguous()) if type(mod) is kind else None)
    t.fit(data)
    hook.remove()
    assert seen and not any(seen)  # trained in channels_last (4-D weights are not contiguous then)
    assert all(p.is_contiguous() for p in m.generator.parameters())  # handed back in the default layout
    m.save_pretrained(tmp_path / "m")
    back = ga.from_pretrained(tmp_path / "m")
    a = m.sample(4, generator=torch.Generator().manual_seed(0))
    b = back.sample(4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)


# ---- sampling ---------------------------------------------------------------------------------
def test_sample_returns_an_ordinary_tensor_made_without_autograd():
    m = ga.create("wgan-gp", image_size=16, channels=1, width=8, latent_dim=8)
    x = m.sample(3, generator=torch.Generator().manual_seed(0))
    assert not x.is_inference() and not x.requires_grad and x.is_contiguous()
    x.add_(0)  # in-place use by the caller must work
    m.sample_precision = "bf16"
    y = m.sample(3, generator=torch.Generator().manual_seed(0))
    assert y.dtype == torch.float32 and (y - x).abs().max() < 0.05  # bf16 maths, same images


# ---- the time estimate ------------------------------------------------------------------------
class FakeRun:
    """A run whose step k takes ``seconds(k)``: the timer reads this clock, never the real one."""

    def __init__(self, seconds):
        self.seconds, self.now = seconds, 0.0

    def lines(self, timer, steps):
        said = []
        for k in range(timer.first + 1, timer.first + steps + 1):
            self.now += self.seconds(k)
            line = timer.after_step(k)
            if line:
                said.append((k, line))
        return said


def test_time_estimate_is_printed_once_for_long_runs_only(monkeypatch):
    clock = iter(float(i) for i in range(100))
    monkeypatch.setattr(timing.time, "perf_counter", lambda: next(clock))  # the default clock
    timer = timing.StepTimer(0, 10_000, CPU, "fp32 on cpu")
    lines = [timer.after_step(s) for s in range(1, 40)]
    said = [s for s in lines if s]
    assert len(said) == 1
    # the clock ticks once per reading: 1 s over the 10 timed steps after the 5 warm-up steps
    assert "10,000 steps" in said[0] and "0.10 s/step" in said[0] and "17 min" in said[0]
    assert "(fp32 on cpu)" in said[0]
    short = timing.StepTimer(0, 20, CPU)
    assert not any(short.after_step(s) for s in range(1, 20))


def test_time_estimate_leaves_out_the_warm_up_steps():
    run = FakeRun(lambda k: 30.0 if k <= timing.WARMUP_STEPS else 0.2)  # slow start, then 0.2 s/step
    said = run.lines(timing.StepTimer(0, 2_000, CPU, clock=lambda: run.now), 2_000)
    assert len(said) == 1 and "at 0.20 s/step" in said[0][1] and "about 7 min for 2,000 steps" in said[0][1]


def test_time_estimate_is_revised_once_the_rate_settles_far_from_it():
    # 1.2 s/step over the first timed window, then 0.2: the case of a run estimated at 40 min
    # that took 7; the estimate is revised once two windows agree, and only then
    def seconds(k):
        return 1.2 if k <= timing.WARMUP_STEPS + timing.TIMED_STEPS else 0.2

    run = FakeRun(seconds)
    timer = timing.StepTimer(0, 2_000, CPU, clock=lambda: run.now)
    said = run.lines(timer, 2_000)
    assert [k for k, _ in said] == [15, 75]  # windows end at 15, 35, 75: 35 is the first 0.2 window
    assert "about 40 min for 2,000 steps at 1.20 s/step" in said[0][1]
    assert said[1][1].startswith("revised: about 6 min left for the last 1,925 steps at 0.20 s/step")
    real = sum(seconds(k) for k in range(1, 2_001))
    revised_total = run_time_at(seconds, 75) + 1_925 * 0.2
    assert abs(revised_total - real) <= 0.25 * real


def run_time_at(seconds, step):
    return sum(seconds(k) for k in range(1, step + 1))


def test_a_steady_or_slightly_noisy_rate_is_not_revised():
    steady = FakeRun(lambda k: 0.5)
    assert len(steady.lines(timing.StepTimer(0, 5_000, CPU, clock=lambda: steady.now), 5_000)) == 1
    noisy = FakeRun(lambda k: 0.5 + 0.1 * (k % 2))  # within the 25 % the estimate may be off
    assert len(noisy.lines(timing.StepTimer(0, 5_000, CPU, clock=lambda: noisy.now), 5_000)) == 1


def test_a_rate_that_alternates_is_revised_to_its_mean():
    # 0.5 s/step and 0.8 s/step in blocks of 40: the first window sees only 0.5; the doubling
    # windows average the blocks, settle near the mean 0.65 and revise the estimate to it
    run = FakeRun(lambda k: 0.5 + 0.3 * (k // 40 % 2))
    said = run.lines(timing.StepTimer(0, 5_000, CPU, clock=lambda: run.now), 5_000)
    assert len(said) == 2 and "at 0.65 s/step" in said[1][1]


@pytest.mark.parametrize("seconds,text", [(12, "12 s"), (600, "10 min"), (3 * 3600, "3.0 h")])
def test_durations_read_naturally(seconds, text):
    assert timing.format_duration(seconds) == text
