"""Faults and bad input, each test named after what it injects. Every user-caused failure must be a
GanAugmentError naming the problem, never a crash deep inside torch."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from conftest import THREADS, auto_precision
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gan_augment as ga
from gan_augment.core.folder import load_folder
from gan_augment.core.serialization import read_safetensors, read_safetensors_metadata
from gan_augment.training.checkpoint import CHECKPOINT_NAME
from gan_augment.training.loop import Trainer

TINY = dict(image_size=16, width=8, latent_dim=8)
FAST = dict(batch_size=8, progress=False, sample_every=0, log_every=1)


def gen_weights(m):
    return {k: v.clone() for k, v in m.generator.state_dict().items()}


def test_sigkill_mid_training_then_resume_loses_nothing_and_continues_exactly(tiny_npz, tmp_path):
    """Both sides run with the suite's thread count and the precision "auto" chose here (the
    subprocess cannot see a forced precision, so it is passed explicitly)."""
    prec = auto_precision()
    torch.manual_seed(0)
    straight = ga.create("dcgan", **TINY)
    Trainer(straight, steps=6, out_dir=str(tmp_path / "straight"), checkpoint_every=2, precision=prec,
            **FAST).fit(ga.load_dataset(tiny_npz, classes=["disc"]))
    out = tmp_path / "killed"
    script = textwrap.dedent(f"""
        import os, signal, torch
        import gan_augment as ga
        torch.set_num_threads({THREADS})
        torch.manual_seed(0)
        m = ga.create("dcgan", image_size=16, width=8, latent_dim=8)
        real_g = m.generator_loss
        def g_loss(G, D, labels, ctx):
            if ctx.step == 4:  # step 5 is under way; checkpoint 4 is on disk
                os.kill(os.getpid(), signal.SIGKILL)
            return real_g(G, D, labels, ctx)
        m.generator_loss = g_loss
        ga.Trainer(m, steps=6, out_dir={str(out)!r}, checkpoint_every=2, batch_size=8, progress=False,
                   sample_every=0, log_every=1, precision={prec!r}).fit(ga.load_dataset({str(tiny_npz)!r}, classes=["disc"]))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert json.loads(read_safetensors_metadata(out / CHECKPOINT_NAME)["trainer_state"])["step"] == 4
    torch.manual_seed(99)
    resumed = ga.create("dcgan", **TINY)
    Trainer(resumed, steps=6, out_dir=str(out), checkpoint_every=2, resume=True, precision=prec, **FAST).fit(
        ga.load_dataset(tiny_npz, classes=["disc"]))
    a, b = gen_weights(straight), gen_weights(resumed)
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    steps = [json.loads(ln)["step"] for ln in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_checkpoint_rename_without_permission_keeps_previous(tiny_npz, tmp_path, monkeypatch):
    from gan_augment.core import serialization as weights

    m = ga.create("dcgan", **TINY)
    t = Trainer(m, steps=2, out_dir=str(tmp_path), **FAST)
    t.fit(ga.load_dataset(tiny_npz, classes=["disc"]))
    before = (tmp_path / CHECKPOINT_NAME).read_bytes()

    def denied(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(weights.os, "replace", denied)
    with pytest.raises(ga.CheckpointError, match="Permission denied.*previous file there is untouched"):
        t.save_checkpoint()
    monkeypatch.undo()
    assert (tmp_path / CHECKPOINT_NAME).read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def _pages(path) -> int:
    return -(-path.stat().st_size // 4096)


def test_checkpoint_on_a_really_full_disk_is_one_line_and_keeps_the_previous(tiny_npz, tmp_path, small_disk):
    """A real full filesystem (tmpfs): safetensors, not the OS, raises there, and the user still
    gets one line naming the checkpoint path and the fix."""
    data = ga.load_dataset(tiny_npz, classes=["disc"])
    probe = tmp_path / "probe"
    Trainer(ga.create("dcgan", **TINY), steps=1, out_dir=str(probe), **FAST).fit(data)
    used = sum(_pages(p) for p in probe.rglob("*") if p.is_file())
    half_a_checkpoint = _pages(probe / CHECKPOINT_NAME) // 2
    disk = small_disk(4 * (used + half_a_checkpoint))  # the run fits; a second checkpoint's temp file does not
    t = Trainer(ga.create("dcgan", **TINY), steps=1, out_dir=str(disk / "run"), **FAST)
    t.fit(data)
    before = (disk / "run" / CHECKPOINT_NAME).read_bytes()
    with pytest.raises(ga.WriteError) as caught:
        t.save_checkpoint()
    message = str(caught.value)
    assert "\n" not in message and str(disk / "run" / CHECKPOINT_NAME) in message
    assert "No space left on device" in message and "previous file there is untouched" in message
    assert (disk / "run" / CHECKPOINT_NAME).read_bytes() == before
    assert not [p for p in (disk / "run").iterdir() if p.name.endswith(".tmp")]


def test_sample_into_a_read_only_folder_names_the_path_given(tmp_path, small_disk):
    ga.create("dcgan", **TINY).save_pretrained(tmp_path / "model")
    ro = small_disk(64, read_only=True)
    proc = subprocess.run([sys.executable, "-m", "gan_augment", "sample", "--model", str(tmp_path / "model"),
                           "-n", "4", "--out", str(ro / "grid.png")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip()
    assert "\n" not in line and f"cannot write {ro / 'grid.png'}: Read-only file system" in line, line
    assert ".tmp" not in line and not list(ro.iterdir())


def test_injected_nan_in_generator_stops_per_policy(tiny_npz, tmp_path):
    """Policy: stop at the first non-finite loss, name the step and keep the last good checkpoint."""
    m = ga.create("dcgan", **TINY)
    real = m.generator_loss

    def nan_at_3(G, D, labels, ctx):
        loss, logs = real(G, D, labels, ctx)
        return (loss * float("inf") if ctx.step == 2 else loss), logs

    m.generator_loss = nan_at_3
    with pytest.raises(ga.TrainingDiverged, match="generator loss became .* at step 3"):
        Trainer(m, steps=8, out_dir=str(tmp_path), checkpoint_every=2, batch_size=8, progress=False,
                sample_every=0, log_every=4).fit(ga.load_dataset(tiny_npz, classes=["disc"]))
    # the checkpoint at step 2 survives; step 4 was never written because the check comes first
    assert json.loads(read_safetensors_metadata(tmp_path / CHECKPOINT_NAME)["trainer_state"])["step"] == 2


# ---- fuzzed bad input --------------------------------------------------------------------------
arrays = st.one_of(
    st.tuples(st.integers(0, 3), st.integers(1, 5), st.integers(1, 5), st.integers(0, 5)).map(
        lambda s: np.zeros(s, dtype=np.uint8)),  # wrong channel counts and empty sets
    st.sampled_from([np.zeros((4, 8, 8, 3), np.int64), np.full((4, 8, 8, 3), 3.5, np.float32),
                     np.zeros((4, 8), np.uint8), np.zeros((2, 3, 8, 8, 3), np.uint8)]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(images=arrays, label_shift=st.integers(-2, 3))
def test_fuzzed_arrays_get_clear_errors(images, label_shift):
    labels = np.arange(len(images)) % 2 + (label_shift if label_shift in (-2, 3) else 0)
    m = ga.create("dcgan", **TINY)
    try:
        ds = ga.as_dataset((images, labels, ["a", "b"]), image_size=16, channels=3)
        Trainer(m, steps=1, **FAST)._setup(ds)
    except ga.GanAugmentError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    # only well-formed input may pass: uint8 (N, H, W, C) or (N, C, H, W), C in {1, 3}, sides >= 4
    s = images.shape
    channels_last = s[-1] in (1, 3) and min(s[1], s[2]) >= 4
    channels_first = s[-1] not in (1, 3) and s[1] in (1, 3) and min(s[2], s[3]) >= 4
    assert images.dtype == np.uint8 and images.ndim == 4 and len(images) > 0
    assert channels_last or channels_first
    assert labels.min() >= 0 and labels.max() < 2


def test_empty_class_and_mismatched_class_names(tiny_npz):
    ds = ga.load_dataset(tiny_npz)
    m = ga.create("cwgan-gp", **TINY, class_names=["disc", "square", "triangle"])
    with pytest.raises(ga.ConfigError, match="differ from the model's"):
        Trainer(m, steps=1, **FAST).fit(ds)
    with pytest.raises(ga.DataError, match="empty"):
        Trainer(ga.create("dcgan", **TINY), steps=1, **FAST).fit(ds.subset([]))


def test_corrupted_npz_is_named(tmp_path, tiny_npz):
    raw = tiny_npz.read_bytes()
    bad = tmp_path / "cut.npz"
    bad.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ga.DataError, match="corrupted"):
        ga.load_dataset(bad).tensor()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutation=st.one_of(
    st.just("not json {"), st.just("[]"), st.just('{"format_version": 1}'),
    st.builds(lambda v: json.dumps({"format_version": v, "backend": "dcgan", "config": {}}),
              st.one_of(st.integers(2, 99), st.text(max_size=3), st.none())),
    st.builds(lambda k, v: json.dumps({"format_version": 1, "backend": "dcgan", "config": {k: v}}),
              st.sampled_from(["image_size", "channels", "width", "bogus"]),
              st.one_of(st.integers(-5, 5), st.text(max_size=3), st.none())),
))
def test_fuzzed_config_json_gets_clear_errors(tmp_path_factory, mutation):
    folder = tmp_path_factory.mktemp("m")
    ga.create("dcgan", **TINY).save_pretrained(folder, card=False)
    (folder / "config.json").write_text(mutation)
    with pytest.raises(ga.GanAugmentError) as err:
        load_folder(folder)
    assert "\n" not in str(err.value)


def test_safetensors_with_wrong_shapes(tmp_path):
    from safetensors.torch import save_file

    ga.create("dcgan", **TINY).save_pretrained(tmp_path, card=False)
    state = read_safetensors(tmp_path / "model.safetensors")
    key = next(iter(state))
    state[key] = torch.zeros(3, 3)
    save_file(state, str(tmp_path / "model.safetensors"))
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg.pop("weights_sha256", None)
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ga.ModelLoadError, match="wrong shapes|sha256"):
        load_folder(tmp_path)


def test_mixer_is_deterministic_when_workers_restart_each_epoch():
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    from conftest_mix import FakeConditional, imbalanced_dataset

    def epochs(num_workers):
        mix = ga.SyntheticMix(imbalanced_dataset([10, 4]), FakeConditional(image_size=16, class_names=["class0", "class1"]),
                              strategy="minority", ratio=None, seed=3, bank_batch=4, refresh="epoch")
        out = []
        for epoch in range(2):
            mix.set_epoch(epoch)
            loader = torch.utils.data.DataLoader(mix, batch_size=4, shuffle=True, num_workers=num_workers,
                                                 generator=torch.Generator().manual_seed(epoch))
            out.append(torch.cat([x for x, _ in loader]))  # non-persistent: workers restart
        return out

    a, b = epochs(0), epochs(2)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], a[1])


# ---- the suite itself leaks no global torch state -------------------------------------------------
def test_a_test_that_changes_global_torch_state():
    """Changes what the next test checks; conftest's autouse fixture must put it all back."""
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(12345)
    np.random.seed(12345)


def test_the_next_test_starts_from_the_suite_state():
    assert torch.get_num_threads() == THREADS
    assert torch.get_default_dtype() == torch.float32
    assert not torch.are_deterministic_algorithms_enabled()
    drawn = torch.rand(1).item()
    torch.manual_seed(12345)
    assert drawn != torch.rand(1).item()  # the global RNG was not left seeded at 12345
