"""The command line: happy path end to end, and one-line errors with exit status 2."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from gan_augment.cli import main


def test_backends_lists_dcgan(capsys):
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["name", "version", "distribution", "conditional"]
    assert any(line.split()[0] == "dcgan" for line in out.splitlines()[1:])


def test_train_resume_and_sample(tiny_npz, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--backend", "dcgan", "--data", str(tiny_npz), "--split", "train", "--classes", "disc",
            "--image-size", "16", "--steps", "2", "--out", str(out), "--batch-size", "8", "--quiet",
            "--opt", "width=8", "--opt", "latent_dim=8", "--sample-every", "1"]
    assert main(args) == 0
    assert (out / "samples.png").exists() and (out / "loss_curve.png").exists()
    assert main(["train", "--data", str(tiny_npz), "--split", "train", "--classes", "disc", "--steps", "3",
                 "--out", str(out), "--resume", "--quiet"]) == 0
    assert "trained dcgan for 3 steps" in capsys.readouterr().out
    assert main(["sample", "--model", str(out), "-n", "4", "--out", str(tmp_path / "s.npz")]) == 0
    z = np.load(tmp_path / "s.npz")
    assert z["images"].shape == (4, 16, 16, 3) and z["images"].dtype == np.uint8
    assert main(["sample", "--model", str(out), "-n", "4", "--out", str(tmp_path / "s.png")]) == 0


def test_resume_without_stop_at_runs_to_the_end(tiny_npz, tmp_path, capsys):
    out = tmp_path / "run"
    common = ["--data", str(tiny_npz), "--split", "train", "--classes", "disc", "--out", str(out), "--quiet"]
    assert main(["train", "--backend", "dcgan", "--image-size", "16", "--steps", "4", "--stop-at", "2",
                 "--batch-size", "8", "--opt", "width=8", "--opt", "latent_dim=8", *common]) == 0
    assert "trained dcgan for 2 steps" in capsys.readouterr().out
    assert main(["train", "--resume", *common]) == 0
    assert "trained dcgan for 4 steps" in capsys.readouterr().out


@pytest.mark.parametrize("argv,needle", [
    (["train", "--backend", "dcgan", "--data", "missing.npz", "--image-size", "16", "--steps", "1", "--out", "x"], "data not found"),
    (["train", "--backend", "dcgn", "--data", "{npz}", "--image-size", "16", "--steps", "1", "--out", "x"], "Did you mean 'dcgan'"),
    (["train", "--backend", "dcgan", "--data", "{npz}", "--classes", "circle", "--image-size", "16", "--steps", "1", "--out", "x"], "unknown class 'circle'"),
    (["train", "--backend", "dcgan", "--data", "{npz}", "--image-size", "18", "--steps", "1", "--out", "x"], "image_size 18"),
    (["train", "--backend", "dcgan", "--data", "{npz}", "--image-size", "16", "--out", "x"], "--steps N or --epochs N"),
    (["train", "--data", "{npz}", "--steps", "1", "--out", "nowhere", "--resume"], "nothing to resume"),
    (["sample", "--model", "no-such-folder", "--out", "x.png"], "no-such-folder"),
])
def test_bad_input_is_one_line_exit_2_no_traceback(tiny_npz, tmp_path, argv, needle):
    argv = [a.replace("{npz}", str(tiny_npz)) for a in argv]
    proc = subprocess.run([sys.executable, "-m", "gan_augment", *argv], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    assert proc.returncode == 2, proc.stderr
    err = [ln for ln in proc.stderr.splitlines() if ln.startswith("gan-augment")]
    assert len(err) == 1 and needle in err[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_train_classwise_from_the_cli(tiny_npz, tmp_path):
    out = tmp_path / "cw"
    assert main(["train", "--backend", "classwise", "--data", str(tiny_npz), "--image-size", "16",
                 "--steps", "1", "--out", str(out), "--batch-size", "8", "--quiet", "--opt", 'backend="dcgan"',
                 "--opt", "width=8", "--opt", "latent_dim=8"]) == 0
    assert main(["sample", "--model", str(out), "-n", "2", "--class", "square", "--out", str(tmp_path / "s.npz")]) == 0
    assert np.load(tmp_path / "s.npz")["labels"].tolist() == [1, 1]


def test_an_import_error_of_our_own_sub_command_module_surfaces(monkeypatch):
    import gan_augment.cli as cli

    real = cli.importlib.import_module

    def broken(name):
        if name == "gan_augment.cli.evaluate":
            raise ImportError("cannot import name 'evaluate' from 'gan_augment.eval.evaluate'",
                              name="gan_augment.eval.evaluate")
        return real(name)

    monkeypatch.setattr(cli.importlib, "import_module", broken)
    with pytest.raises(ImportError, match="cannot import name 'evaluate'"):
        cli.build_parser()


def test_a_missing_optional_dependency_skips_its_commands_with_a_note(monkeypatch, capsys):
    import gan_augment.cli as cli

    real = cli.importlib.import_module

    def missing(name):
        if name == "gan_augment.cli.efficacy":
            raise ModuleNotFoundError("No module named 'imblearn'", name="imblearn")
        return real(name)

    monkeypatch.setattr(cli.importlib, "import_module", missing)
    parser = cli.build_parser()
    err = capsys.readouterr().err
    assert "gan_augment.cli.efficacy are unavailable because the module imblearn is not installed" in err
    assert "install the package that provides imblearn" in err
    assert parser.parse_args(["models"]).func is not None  # the hub commands are still there
