"""Ctrl-C and SIGTERM keep the last completed step, timed checkpoints, and resume saying where it
continues. Every run that is compared is pinned to one thread (OMP_NUM_THREADS=1 in the
subprocesses, torch.set_num_threads(1) in this one) and to one precision on both sides (fp32, and
in Python also what "auto" picks here): bit-identity is checked with torch.equal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import torch
from conftest import auto_precision

import gan_augment as ga
from gan_augment.core.serialization import read_safetensors
from gan_augment.training import loop
from gan_augment.training.checkpoint import CHECKPOINT_NAME, read_trainer_state
from gan_augment.training.interrupts import StopRequests, TrainingInterrupted
from gan_augment.training.loop import Trainer

TINY = dict(image_size=16, width=8, latent_dim=8)
FAST = dict(batch_size=8, progress=False, sample_every=0, log_every=1, precision="fp32", checkpoint_every=1000)
GA_CLI = [sys.executable, "-m", "gan_augment"]
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(autouse=True)
def python_sigint():
    """Python's own Ctrl-C handler in every test, however pytest was started: a process launched
    in the background (``nohup ... &``) inherits SIGINT ignored, and Python then installs none."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def signal_at(model, step: int, sig=signal.SIGINT) -> None:
    """Deliver ``sig`` to this process while step ``step + 1`` is under way (from its G loss)."""
    real = model.generator_loss

    def g_loss(G, D, labels, ctx):
        if ctx.step == step:
            os.kill(os.getpid(), sig)
        return real(G, D, labels, ctx)

    model.generator_loss = g_loss


def same_tensors(a: Path, b: Path) -> bool:
    x, y = read_safetensors(a), read_safetensors(b)
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


@pytest.mark.parametrize("precision", ["fp32", "auto"])
def test_sigint_in_fit_checkpoints_the_step_then_resume_is_bit_identical(tiny_npz, tmp_path, one_thread, precision):
    """fp32, and what precision="auto" picks on this CPU (bf16 where native, else fp32 again)."""
    data = ga.load_dataset(tiny_npz, classes=["disc"])
    run = {**FAST, "precision": auto_precision() if precision == "auto" else precision}
    torch.manual_seed(0)
    straight = ga.create("dcgan", **TINY)
    Trainer(straight, steps=6, out_dir=str(tmp_path / "straight"), **run).fit(data)

    torch.manual_seed(0)
    m = ga.create("dcgan", **TINY)
    signal_at(m, 2)  # during step 3; checkpoint_every=1000: no checkpoint on disk yet
    before = signal.getsignal(signal.SIGINT)
    out = tmp_path / "stopped"
    with pytest.raises(TrainingInterrupted, match=r"stopped at step 3 \(SIGINT\); checkpoint at .*"
                                                  r"checkpoint.safetensors; continue with --resume") as info:
        Trainer(m, steps=6, out_dir=str(out), **run).fit(data)
    assert isinstance(info.value, KeyboardInterrupt) and info.value.step == 3 and info.value.exit_code == 130
    assert info.value.checkpoint == out / CHECKPOINT_NAME
    assert read_trainer_state(out / CHECKPOINT_NAME)["step"] == 3
    assert signal.getsignal(signal.SIGINT) is before  # handlers restored
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]

    torch.manual_seed(99)  # resume must not depend on the caller's RNG
    resumed = ga.create("dcgan", **TINY)
    Trainer(resumed, steps=6, out_dir=str(out), resume=True, **run).fit(data)
    assert same_tensors(tmp_path / "straight" / CHECKPOINT_NAME, out / CHECKPOINT_NAME)
    assert same_tensors(tmp_path / "straight" / "model.safetensors", out / "model.safetensors")


def test_sigterm_in_fit_is_kept_the_same_way(tiny_npz, tmp_path):
    m = ga.create("dcgan", **TINY)
    signal_at(m, 0, signal.SIGTERM)
    with pytest.raises(TrainingInterrupted, match=r"stopped at step 1 \(SIGTERM\)") as info:
        Trainer(m, steps=4, out_dir=str(tmp_path), **FAST).fit(ga.load_dataset(tiny_npz, classes=["disc"]))
    assert info.value.exit_code == 128 + signal.SIGTERM
    assert read_trainer_state(tmp_path / CHECKPOINT_NAME)["step"] == 1


def test_without_a_run_folder_ctrl_c_is_left_alone(tiny_npz):
    m = ga.create("dcgan", **TINY)
    signal_at(m, 0)
    with pytest.raises(KeyboardInterrupt) as info:  # python's own: nothing to save into
        Trainer(m, steps=4, **FAST).fit(ga.load_dataset(tiny_npz, classes=["disc"]))
    assert not isinstance(info.value, TrainingInterrupted)


def test_second_signal_stops_at_once_and_handlers_come_back():
    before = signal.getsignal(signal.SIGINT)
    with StopRequests() as stop:
        assert signal.getsignal(signal.SIGINT) is not before
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested == "SIGINT"
        with pytest.raises(KeyboardInterrupt, match="second SIGINT"):
            os.kill(os.getpid(), signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is before  # the second one already restored them
    assert signal.getsignal(signal.SIGINT) is before


def test_handlers_are_installed_only_in_the_main_thread():
    before, seen = signal.getsignal(signal.SIGINT), []

    def work():
        with StopRequests():
            seen.append(signal.getsignal(signal.SIGINT))

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert seen == [before]


def test_timed_checkpoints_follow_the_fake_clock(tiny_npz, tmp_path, monkeypatch):
    saved = []
    real_save = Trainer.save_checkpoint

    def recording_save(self, path=None):
        saved.append(self.step)
        return real_save(self, path)

    monkeypatch.setattr(Trainer, "save_checkpoint", recording_save)
    data = ga.load_dataset(tiny_npz, classes=["disc"])
    for minutes, expected in ((2, [2, 4, 5]), (0, [5])):
        saved.clear()
        t = Trainer(ga.create("dcgan", **TINY), steps=5, out_dir=str(tmp_path / f"m{minutes}"),
                    checkpoint_minutes=minutes, **{**FAST, "checkpoint_every": 1000})
        monkeypatch.setattr(loop, "clock", lambda t=t: 60.0 * t.step)  # one minute per step
        t.fit(data)
        assert saved == expected, minutes


def test_checkpoint_minutes_must_be_a_non_negative_number():
    with pytest.raises(ga.ConfigError, match="checkpoint_minutes must be a number of minutes >= 0"):
        ga.TrainConfig.build({}, {"steps": 1, "checkpoint_minutes": -1})
    assert ga.TrainConfig.build({}, {"steps": 1}).checkpoint_minutes == 10


def test_resume_says_which_step_it_continues_from(tiny_npz, tmp_path, capsys):
    data = ga.load_dataset(tiny_npz, classes=["disc"])
    Trainer(ga.create("dcgan", **TINY), steps=5000, stop_at=2, out_dir=str(tmp_path), **FAST).fit(data)
    capsys.readouterr()
    Trainer(ga.create("dcgan", **TINY), steps=5000, stop_at=3, out_dir=str(tmp_path), resume=True, **FAST).fit(data)
    assert f"resuming {tmp_path} from step 2 of 5,000" in capsys.readouterr().err


def _cli_hooked(argv: list[str], step: int) -> str:
    """`gan-augment` (gan_augment.cli.main) in a subprocess whose dcgan sends itself SIGINT
    while step ``step + 1`` is under way."""
    return textwrap.dedent(f"""
        import os, signal, sys
        import gan_augment as ga
        from gan_augment.cli import main
        cls = ga.backend_info("dcgan").cls
        real = cls.generator_loss
        def g_loss(self, G, D, labels, ctx):
            if ctx.step == {step}:
                os.kill(os.getpid(), signal.SIGINT)
            return real(self, G, D, labels, ctx)
        cls.generator_loss = g_loss
        sys.exit(main({argv!r}))
    """)


def test_cli_sigint_before_the_first_checkpoint_then_resume_is_bit_identical(tiny_npz, tmp_path):
    """fp32 (--opt precision=fp32) and one thread (OMP_NUM_THREADS=1) in every run."""
    def argv(out):
        return ["train", "--backend", "dcgan", "--data", str(tiny_npz), "--classes", "disc", "--image-size", "16",
                "--steps", "6", "--checkpoint-every", "1000", "--batch-size", "8", "--out", str(out), "--quiet",
                "--sample-every", "0", "--opt", "width=8", "--opt", "latent_dim=8", "--opt", "precision=fp32",
                "--seed", "0"]

    def run(cmd):
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=ONE_THREAD, cwd=tmp_path)

    straight = run([*GA_CLI, *argv(tmp_path / "straight")])
    assert straight.returncode == 0, straight.stderr
    out = tmp_path / "stopped"
    stopped = run([sys.executable, "-c", _cli_hooked(argv(out), 2)])
    assert stopped.returncode == 130, stopped.stderr
    assert (f"gan-augment: stopped at step 3 (SIGINT); checkpoint at {out / CHECKPOINT_NAME}; "
            "continue with --resume") in stopped.stderr
    assert "Traceback" not in stopped.stderr
    assert read_trainer_state(out / CHECKPOINT_NAME)["step"] == 3
    resumed = run([*GA_CLI, "train", "--data", str(tiny_npz), "--classes", "disc", "--out", str(out),
                   "--resume", "--quiet"])
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {out} from step 3 of 6" in resumed.stderr
    assert same_tensors(tmp_path / "straight" / "model.safetensors", out / "model.safetensors")
    assert same_tensors(tmp_path / "straight" / CHECKPOINT_NAME, out / CHECKPOINT_NAME)


def test_cli_interrupt_before_training_claims_no_checkpoint(tiny_npz, tmp_path, monkeypatch, capsys):
    from gan_augment import cli

    def interrupted(self, data):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "fit", interrupted)
    out = tmp_path / "run"
    code = cli.main(["train", "--backend", "dcgan", "--data", str(tiny_npz), "--classes", "disc",
                     "--image-size", "16", "--steps", "3", "--out", str(out), "--quiet", "--opt", "width=8"])
    assert code == 130
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == f"gan-augment: interrupted; no checkpoint in {out}, nothing to resume."


def test_a_stop_during_a_prepare_stage_writes_nothing_half_done(tmp_path):
    t = Trainer(ga.create("dcgan", **TINY), steps=3, out_dir=str(tmp_path), **FAST)
    done = []
    with pytest.raises(TrainingInterrupted, match=r"stopped at step 0 \(SIGINT\); no checkpoint was written"):
        with StopRequests() as t._stop:
            for i in t.stage(5, "autoencoder"):
                done.append(i)
                if i == 1:
                    os.kill(os.getpid(), signal.SIGINT)
    assert done == [0, 1] and not (tmp_path / CHECKPOINT_NAME).exists()
