"""The shared trainer: exact resume, atomic checkpoints, divergence stop, schedules, outputs."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

import gan_augment as ga
from gan_augment.core.serialization import read_safetensors, read_safetensors_metadata
from gan_augment.training.checkpoint import CHECKPOINT_NAME
from gan_augment.training.config import epoch_permutation, pick_device
from gan_augment.training.loop import Trainer

TINY = dict(image_size=16, width=8, latent_dim=8)
FAST = dict(batch_size=8, progress=False, log_every=1, sample_every=0, grid_size=4)


def tiny_model(name="dcgan", seed=0, **kw):
    torch.manual_seed(seed)
    return ga.create(name, **{**TINY, **kw})


def weights(model):
    return {k: v.clone() for k, v in model.generator.state_dict().items()} | {
        "D." + k: v.clone() for k, v in model.discriminator.state_dict().items()}


def assert_same_weights(a, b, atol=1e-6):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=atol), k


@pytest.mark.parametrize("backend,extra", [
    ("dcgan", dict(schedule="cosine", ema_decay=0.9)),
    ("wgan-gp", dict(n_critic=2, optimizer="rmsprop")),
])
def test_resume_is_exact(tiny_npz, tmp_path, backend, extra):
    """2N steps straight equal N steps, stop, resume, N steps (same weights, same EMA)."""
    data = ga.load_dataset(tiny_npz, split="train", classes=["disc"])
    n = 4
    straight = tiny_model(backend)
    Trainer(straight, steps=2 * n, out_dir=str(tmp_path / "a"), **FAST, **extra).fit(data)

    staged = tiny_model(backend)
    Trainer(staged, steps=2 * n, stop_at=n, out_dir=str(tmp_path / "b"), **FAST, **extra).fit(data)
    resumed = tiny_model(backend, seed=123)  # different init: everything must come from the checkpoint
    Trainer(resumed, steps=2 * n, resume=True, out_dir=str(tmp_path / "b"), **FAST, **extra).fit(data)
    assert_same_weights(weights(straight), weights(resumed))
    g = torch.Generator().manual_seed(5)
    a = straight.sample(3, generator=g)
    b = resumed.sample(3, generator=torch.Generator().manual_seed(5))
    assert torch.allclose(a, b, atol=1e-6)
    # the metrics log has each step once, in order
    steps = [json.loads(ln)["step"] for ln in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 2 * n + 1))


def test_run_folder_has_log_grid_curve_checkpoint_and_model(tiny_npz, tmp_path):
    data = ga.load_dataset(tiny_npz, classes=["square"])
    m = tiny_model()
    Trainer(m, steps=4, out_dir=str(tmp_path), batch_size=8, progress=False, log_every=2,
            sample_every=2, checkpoint_every=2, grid_size=4).fit(data)
    for name in ("metrics.jsonl", "samples.png", "loss_curve.png", CHECKPOINT_NAME, "config.json", "model.safetensors"):
        assert (tmp_path / name).exists(), name
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["step_0000002.png", "step_0000004.png"]
    loaded = ga.from_pretrained(tmp_path)
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    assert torch.equal(loaded.sample(2, generator=g1), m.sample(2, generator=g2))
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*tmp"))


def test_refuses_to_overwrite_a_run_without_resume(tiny_npz, tmp_path):
    data = ga.load_dataset(tiny_npz, classes=["disc"])
    Trainer(tiny_model(), steps=1, out_dir=str(tmp_path), **FAST).fit(data)
    with pytest.raises(ga.ConfigError, match="--resume"):
        Trainer(tiny_model(), steps=1, out_dir=str(tmp_path), **FAST).fit(data)


def test_cosine_schedule_decays_to_the_floor(tiny_npz):
    data = ga.load_dataset(tiny_npz, classes=["disc"])
    t = Trainer(tiny_model(), steps=6, schedule="cosine", min_lr_ratio=0.1, lr_g=1e-3, lr_d=5e-4, **FAST)
    t.fit(data)
    assert math.isclose(t.opt_g.param_groups[0]["lr"], 1e-4, rel_tol=1e-6)
    assert math.isclose(t.opt_d.param_groups[0]["lr"], 5e-5, rel_tol=1e-6)
    mid = [r["lr_g"] for r in t.history][2]  # after 3 of 6 steps: halfway down the cosine
    assert math.isclose(mid, 1e-4 + 0.5 * (1e-3 - 1e-4), rel_tol=1e-6)


def test_n_critic_counts_discriminator_batches(tiny_npz):
    data = ga.load_dataset(tiny_npz, classes=["disc"])
    m = tiny_model()
    calls = {"d": 0, "g": 0}
    d_loss, g_loss = m.discriminator_loss, m.generator_loss

    def count_d(*a):
        calls["d"] += 1
        return d_loss(*a)

    def count_g(*a):
        calls["g"] += 1
        return g_loss(*a)

    m.discriminator_loss, m.generator_loss = count_d, count_g
    Trainer(m, steps=3, n_critic=4, **FAST).fit(data)
    assert calls == {"d": 12, "g": 3}


def test_epochs_translate_to_steps(tiny_npz):
    data = ga.load_dataset(tiny_npz, classes=["disc"])  # 24 images, batch 8 -> 3 batches/epoch
    t = Trainer(tiny_model(), epochs=2, n_critic=1, **FAST)
    t.fit(data)
    assert t.step == 6


def test_data_order_is_a_function_of_seed_and_epoch():
    a, b = epoch_permutation(50, 3, 7), epoch_permutation(50, 3, 7)
    assert torch.equal(a, b) and sorted(a.tolist()) == list(range(50))
    assert not torch.equal(a, epoch_permutation(50, 3, 8))


class NaNAt(ga.AdversarialAugmenter):
    """A DCGAN-like backend whose discriminator loss becomes NaN at a chosen step."""

    name = "nan-at"
    defaults = {"latent_dim": 8, "nan_step": 5}

    def build_generator(self):
        return ga.nets.ConvGenerator(8, 3, 16, 4)

    def build_discriminator(self):
        return ga.nets.ConvDiscriminator(3, 16, 4)

    def discriminator_loss(self, G, D, real, labels, ctx):
        loss = D(real).mean() - D(G(self.sample_latent(len(real), None, ctx.rng)).detach()).mean()
        return (loss * float("nan") if ctx.step + 1 >= self.config["nan_step"] else loss), {}

    def generator_loss(self, G, D, labels, ctx):
        return -D(G(self.sample_latent(len(labels), None, ctx.rng))).mean(), {}


def test_nan_stops_cleanly_naming_the_step_and_keeps_last_good_checkpoint(tiny_npz, tmp_path):
    data = ga.load_dataset(tiny_npz, classes=["disc"])
    m = NaNAt(image_size=16, nan_step=5)
    with pytest.raises(ga.TrainingDiverged, match="at step 5") as err:
        Trainer(m, steps=10, out_dir=str(tmp_path), checkpoint_every=2, batch_size=8, progress=False,
                log_every=3, sample_every=0).fit(data)
    assert "step 4" in str(err.value)  # the last good checkpoint is named
    state = json.loads(read_safetensors_metadata(tmp_path / CHECKPOINT_NAME)["trainer_state"])
    assert state["step"] == 4
    tensors = read_safetensors(tmp_path / CHECKPOINT_NAME)
    assert all(torch.isfinite(v).all() for k, v in tensors.items() if v.is_floating_point())


def test_killed_during_checkpoint_write_leaves_previous_checkpoint_loadable(tiny_npz, tmp_path):
    """A real SIGKILL while the second checkpoint is half written."""
    out = tmp_path / "run"
    script = textwrap.dedent(f"""
        import os, signal, torch, safetensors.torch as st
        import gan_augment as ga
        from gan_augment.core import serialization as weights
        real_save = st.save_file
        calls = {{"n": 0}}
        def dying_save(tensors, path, metadata=None):
            calls["n"] += 1
            if calls["n"] == 3:  # checkpoint 1 = call 1, its model.safetensors = call 2
                with open(path, "wb") as f:
                    f.write(b"half a checkpoint")
                    f.flush(); os.fsync(f.fileno())
                os.kill(os.getpid(), signal.SIGKILL)
            return real_save(tensors, path, metadata=metadata)
        weights.save_file = dying_save
        torch.manual_seed(0)
        m = ga.create("dcgan", image_size=16, width=8, latent_dim=8)
        data = ga.load_dataset({str(tiny_npz)!r}, classes=["disc"])
        ga.Trainer(m, steps=6, checkpoint_every=2, out_dir={str(out)!r}, batch_size=8,
                   progress=False, sample_every=0).fit(data)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    state = json.loads(read_safetensors_metadata(out / CHECKPOINT_NAME)["trainer_state"])
    assert state["step"] == 2
    # and the run resumes from it to the end
    torch.manual_seed(0)
    m = ga.create("dcgan", **TINY)
    t = Trainer(m, steps=6, checkpoint_every=2, out_dir=str(out), batch_size=8, progress=False,
                sample_every=0, resume=True)
    t.fit(ga.load_dataset(tiny_npz, classes=["disc"]))
    assert t.step == 6
    leftovers = [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    assert len(leftovers) <= 1  # the killed write's temp file, never a half-written checkpoint


def test_failed_checkpoint_write_is_clear_and_keeps_previous(tiny_npz, tmp_path, monkeypatch):
    from gan_augment.core import serialization as w

    data = ga.load_dataset(tiny_npz, classes=["disc"])
    m = tiny_model()
    t = Trainer(m, steps=2, out_dir=str(tmp_path), **FAST)
    t.fit(data)
    before = (tmp_path / CHECKPOINT_NAME).read_bytes()

    def no_space(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(w, "save_file", no_space)
    with pytest.raises(ga.CheckpointError, match="No space left on device.*previous file there is untouched"):
        t.save_checkpoint()
    assert (tmp_path / CHECKPOINT_NAME).read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_bad_training_settings_are_named(tiny_npz):
    m = tiny_model()
    with pytest.raises(ga.ConfigError, match="Did you mean 'n_critic'"):
        Trainer(m, steps=1, ncritic=2)
    with pytest.raises(ga.ConfigError, match="steps=N or epochs=N"):
        Trainer(m)
    with pytest.raises(ga.ConfigError, match="optimizer"):
        Trainer(m, steps=1, optimizer="sgd")


def test_device_choice_falls_back_to_cpu():
    expected = "cuda" if torch.cuda.is_available() else (
        "mps" if torch.backends.mps.is_available() else "cpu")
    assert pick_device("auto").type == expected
    assert pick_device("cpu").type == "cpu"


def test_collapse_monitor_warns_when_samples_stop_varying(tiny_npz, tmp_path):
    data = ga.load_dataset(tiny_npz, classes=["disc"])
    m = tiny_model()
    t = Trainer(m, steps=4, monitor_every=2, collapse_threshold=0.99, out_dir=str(tmp_path), **FAST)
    t._setup(data)
    first = t.diversity()
    assert first > 0
    with torch.no_grad():  # force collapse: the generator ignores its latent
        m.generator.net[0].weight.zero_()
    assert t.diversity() < 1e-6
    t.monitor_state = {"diversity_first": first}
    t.history = [{"step": 2, "d_loss": 1.0}]
    with pytest.warns(RuntimeWarning, match="mode collapse"):
        t._monitor()
    assert "mode collapse" in t.monitor_state["warnings"][0]
    t.cfg.early_stop = True
    with pytest.raises(ga.TrainingDiverged, match="stopped early"):
        t._monitor()


def test_atomic_writes_get_ordinary_file_permissions(tmp_path):
    """mkstemp's 0600 must not leak into model folders that others need to read."""
    from gan_augment.core.serialization import _UMASK, atomic_save_safetensors, atomic_write_text

    atomic_write_text(tmp_path / "a.json", "{}")
    atomic_save_safetensors({"x": torch.zeros(2)}, tmp_path / "b.safetensors")
    for name in ("a.json", "b.safetensors"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~_UMASK


def test_ema_warms_up_then_follows_the_configured_decay(tiny_npz):
    """EMA_t = d_t * EMA_{t-1} + (1 - d_t) * G_t with d_t = min(decay, (1 + t) / (10 + t))."""
    data = ga.load_dataset(tiny_npz, classes=["disc"])
    m = tiny_model()
    t = Trainer(m, steps=3, ema_decay=0.5, **FAST)
    t._setup(data)
    key = "net.0.weight"
    ema = m.ema.module.state_dict()[key].clone()  # a copy of G's initial weights
    with torch.no_grad():
        for step, new_value in ((0, 1.0), (1, 2.0), (30, 3.0)):
            t.step = step
            m.generator.state_dict()[key].fill_(new_value)
            m.ema.update_parameters(m.generator)
            if step == 0:  # the first update copies (AveragedModel's own rule)
                ema = torch.full_like(ema, new_value)
            else:
                d = min(0.5, (1 + step) / (10 + step))
                ema = d * ema + (1 - d) * new_value
            assert torch.allclose(m.ema.module.state_dict()[key], ema), step
    t.step = 0
    assert t.ema_decay_now() == pytest.approx(0.1)
    t.step = 1000
    assert t.ema_decay_now() == 0.5
