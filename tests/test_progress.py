"""Every long stage shows progress: BAGAN's autoencoder gets its own bar and the run's bar (and so
its time estimate) counts its steps; --steps says what it counts for each backend."""

from __future__ import annotations

from pathlib import Path

import pytest

import gan_augment as ga
from gan_augment.cli import main

TINY = ["--opt", "width=8", "--opt", "latent_dim=8", "--opt", "ae_batch_size=8", "--batch-size", "8"]


def bars(err: str) -> list[str]:
    """Every state a tqdm bar printed (they are separated by carriage returns)."""
    return [s.strip() for s in err.replace("\x1b[A", "\r").replace("\n", "\r").split("\r") if "|" in s]


def test_cli_bagan_run_shows_the_autoencoder_and_counts_it(tiny_npz, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--backend", "bagan", "--data", str(tiny_npz), "--steps", "2",
                 "--opt", "ae_steps=20", "--out", str(out), *TINY]) == 0
    err = capsys.readouterr().err
    assert err.splitlines()[0] == "data: 48 RGB images 16x16 -> model 3 channels, 16 px"
    states = bars(err)
    ae = [s for s in states if s.startswith("bagan autoencoder:")]
    run = [s for s in states if s.startswith("bagan:")]
    assert ae and "0/20" in ae[0] and "20/20" in ae[-1]
    # the run's bar covers 20 autoencoder + 2 adversarial steps, and the autoencoder moved it
    assert "0/22" in run[0] and "22/22" in run[-1]
    assert any(f"{k}/22" in s for s in run for k in range(1, 21))


def test_resumed_bagan_run_starts_past_its_finished_autoencoder(tiny_npz, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--backend", "bagan", "--data", str(tiny_npz), "--steps", "2", "--opt", "ae_steps=20",
            "--out", str(out), *TINY]
    assert main([*args, "--stop-at", "1", "--quiet"]) == 0
    assert bars(capsys.readouterr().err) == []  # --quiet: no bar
    # (--stop-at is saved with the run, so the resume says how far to go)
    assert main(["train", "--data", str(tiny_npz), "--out", str(out), "--resume", "--stop-at", "2"]) == 0
    states = bars(capsys.readouterr().err)
    assert "21/22" in states[0] and "22/22" in states[-1]
    assert not [s for s in states if "autoencoder" in s]  # it ran before the checkpoint: skipped


def test_prepare_steps_is_what_the_trainer_counts():
    assert ga.create("dcgan", image_size=16).prepare_steps == 0
    assert ga.create("bagan", image_size=16, ae_steps=37).prepare_steps == 37
    assert ga.create("bagan-gp", image_size=16).prepare_steps == 1000


def test_steps_help_says_what_a_step_is_for_each_backend(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for words in ("generator update", "n_critic", "1 for dcgan and bagan", "5 for wgan-gp, cwgan-gp and bagan-gp",
                  "ae_steps autoencoder steps", "classwise: that many for each class's model"):
        assert words in text, words


def test_backends_doc_says_what_a_step_is_for_every_built_in_backend():
    text = (Path(__file__).resolve().parents[1] / "docs" / "backends.md").read_text()
    section = text.split("## What `--steps` counts", 1)[1].split("\n\n")
    rows = [line.split("|")[1:4] for part in section[:4] for line in part.splitlines() if line.startswith("| `")]
    documented = {}
    for names, step, before in rows:
        for name in names.replace("`", "").split(","):
            documented[name.strip()] = (step.strip(), before.strip())
    for name in ("dcgan", "wgan-gp", "cwgan-gp", "bagan", "bagan-gp"):
        step, before = documented[name]
        cls = ga.backend_info(name).cls
        assert step.startswith(f"{cls.train_defaults['n_critic']} "), (name, step)
        prep = ga.create(name, image_size=16).prepare_steps
        assert (prep > 0) == (before != "nothing"), (name, before)
    assert "classwise" in documented
