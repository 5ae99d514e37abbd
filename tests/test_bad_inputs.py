"""A table of user mistakes: each one gets a message naming the problem AND the fix.

Through the CLI (``gan_augment.cli.main``): exactly one line on stderr, exit status 2, no traceback.
Through the Python API: the right GanAugmentError subclass. numpy's advice to set allow_pickle is
never passed on, not even as the chained cause of a traceback.
"""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

import gan_augment as ga
from gan_augment.cli import main
from gan_augment.core.devices import available_devices, check_device
from gan_augment.core.naming import did_you_mean, reject_unknown_keys

NO_CUDA = not torch.cuda.is_available()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Good and bad inputs, made once: a tiny npz, broken npz files, a tiny saved model and
    two model folders whose config.json has a misspelt key."""
    from conftest import make_two_class_images

    d = tmp_path_factory.mktemp("bad")
    images, labels = make_two_class_images(8)
    np.savez(d / "tiny.npz", images=images, labels=labels, class_names=np.array(["disc", "square"]),
             split=np.array(["train", "test"] * (len(labels) // 2)))
    with open(d / "pickled.npz", "wb") as f:  # a pickle under an .npz name
        pickle.dump({"images": images}, f)
    np.savez(d / "objects.npz", images=images, labels=labels,
             class_names=np.array(["disc", None], dtype=object))  # an object array is a pickle
    (d / "corrupt.npz").write_bytes((d / "tiny.npz").read_bytes()[:200])  # truncated zip
    with open(d / "bare.npz", "wb") as f:  # np.save of one array, named .npz
        np.save(f, images)
    np.savez(d / "unlabelled.npz", images=images)  # images only: no labels, no class names
    assert main(["train", "--backend", "dcgan", "--data", str(d / "tiny.npz"), "--classes", "disc",  # a run to resume
                 "--image-size", "16", "--steps", "2", "--stop-at", "1", "--batch-size", "8", "--out", str(d / "done"),
                 "--quiet", "--opt", "width=8", "--opt", "latent_dim=8"]) == 0
    model = ga.create("cwgan-gp", image_size=16, width=8, latent_dim=8, embed_dim=4,
                      class_names=["disc", "square"])
    model.save_pretrained(d / "model", card=False)
    for name, edit in (("badtop", lambda c: c.update(clas_names=c.pop("class_names"))),
                       ("badkey", lambda c: c["config"].update(widht=c["config"].pop("width"))),
                       ("badbackend", lambda c: c.update(backend="cwgan_gp")),
                       ("newbackend", lambda c: c.update(backend="stylegan9", backend_version="99.0"))):
        folder = d / name
        model.save_pretrained(folder, card=False)
        cfg = json.loads((folder / "config.json").read_text())
        edit(cfg)
        (folder / "config.json").write_text(json.dumps(cfg))
    return d


def run_cli(argv: list[str], capsys) -> tuple[int, list[str]]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors exit from the parser
        code = exc.code
    err = capsys.readouterr().err
    return code, [ln for ln in err.splitlines() if ln.strip()]


TRAIN = ["train", "--backend", "dcgan", "--data", "{d}/tiny.npz", "--image-size", "16", "--steps", "1",
         "--out", "{d}/run", "--quiet", "--classes", "disc"]


def train(*extra: str, drop: tuple[str, ...] = ()) -> list[str]:
    """TRAIN with ``extra`` appended (an option given twice: the last one wins) and ``drop`` removed."""
    argv = list(TRAIN)
    for opt in drop:
        i = argv.index(opt)
        del argv[i:i + 2]
    return argv + list(extra)


RESUME = ["train", "--data", "{d}/tiny.npz", "--classes", "disc", "--out", "{d}/done", "--resume", "--quiet"]
SAMPLE = ["sample", "--model", "{d}/model", "-n", "2", "--out", "{d}/s.png"]
EVAL = ["evaluate", "--model", "{d}/model", "--data", "{d}/tiny.npz", "--extractor", "pbc-domain-cnn",
        "--out", "{d}/r.json"]
EFFICACY = ["efficacy", "--data", "{d}/tiny.npz", "--generator", "{d}/model", "--out", "{d}/eff",
            "--seeds", "5", "--quiet"]

# (id, argv, what must be named: the problem, the fix, skip reason or None)
CLI_CASES = [
    ("device-cuda-absent", train("--device", "cuda"), "no CUDA GPU", "Available here: cpu",
     None if NO_CUDA else "this machine has a GPU"),
    ("device-unknown", train("--device", "gpu"), "unknown device 'gpu'. Did you mean 'cuda'?", "Available here:", None),
    ("device-cuda-index", train("--device", "cuda:7"), "'cuda:7'", "Available here:", None),
    ("device-evaluate", EVAL + ["--device", "tpu"], "'tpu'", "Available here:", None),
    ("sample-n-zero", SAMPLE + ["-n", "0"], "argument -n", "at least 1", None),
    ("sample-n-negative", SAMPLE + ["-n", "-3"], "argument -n", "at least 1", None),
    ("sample-n-not-a-number", SAMPLE + ["-n", "many"], "argument -n", "whole number", None),
    ("steps-zero", train("--steps", "0"), "argument --steps", "at least 1", None),
    ("batch-size-zero", train("--batch-size", "0"), "argument --batch-size", "at least 1", None),
    ("epochs-zero", train("--epochs", "0", drop=("--steps",)), "argument --epochs", "above 0", None),
    ("epochs-not-a-number", train("--epochs", "two", drop=("--steps",)), "argument --epochs", "a number", None),
    ("sample-every-negative", train("--sample-every", "-1"), "argument --sample-every", "0 or more", None),
    ("image-size-unsupported", train("--image-size", "18"), "image_size 18", "nearest supported sizes are 16 or 20", None),
    ("npz-is-a-pickle", train("--data", "{d}/pickled.npz"), "not an .npz archive", "np.savez(", None),
    ("npz-object-array", train("--data", "{d}/objects.npz"), "holds Python objects", "np.savez(", None),
    ("npz-truncated", train("--data", "{d}/corrupt.npz"), "corrupted or truncated", "copy it again", None),
    ("npz-bare-npy", train("--data", "{d}/bare.npz"), "bare .npy array", "np.savez(", None),
    ("data-missing", train("--data", "{d}/nothing.npz"), "data not found", "Pass a .npz", None),
    ("backend-misspelt", train("--backend", "dcgn"), "unknown backend 'dcgn'", "Did you mean 'dcgan'", None),
    ("class-misspelt", train("--classes", "dsic"), "unknown class 'dsic'", "Did you mean 'disc'", None),
    ("split-misspelt", train("--split", "trian"), "no rows with split 'trian'", "Did you mean 'train'", None),
    ("no-length", train(drop=("--steps",)), "how long to train", "--steps N", None),
    ("opt-model-key-misspelt", train("--opt", "widht=8"), "unknown config key 'widht'", "Did you mean 'width'", None),
    ("opt-trainer-key-misspelt", train("--opt", "lr_gg=1e-4"), "--opt lr_gg: not a dcgan setting nor a training setting",
     "Did you mean 'lr_g'", None),
    ("opt-without-value", train("--opt", "width"), "--opt expects KEY=VALUE", "KEY=VALUE", None),
    ("resume-nothing", train("--resume", "--out", "{d}/empty-run"), "nothing to resume", "Drop --resume", None),
    ("resume-changed-classes", RESUME + ["--classes", "square"], "class names ['disc'] -> ['square']",
     "new --out folder", None),
    ("resume-changed-image-size", RESUME + ["--image-size", "32"], "image size 16 -> 32", "new --out folder", None),
    ("resume-changed-width", RESUME + ["--opt", "width=16"], "network setting width 8 -> 16", "new --out folder", None),
    ("checkpoint-minutes-negative", train("--checkpoint-minutes", "-1"), "argument --checkpoint-minutes",
     "0 (off) or more", None),
    ("checkpoint-minutes-not-a-number", train("--checkpoint-minutes", "soon"), "argument --checkpoint-minutes",
     "a number of minutes", None),
    ("unlabelled-data-conditional", train("--backend", "cwgan-gp", "--data", "{d}/unlabelled.npz", drop=("--classes",)),
     "has no 'labels' array, and cwgan-gp is conditional", "train an unconditional backend such as dcgan", None),
    ("required-missing", ["train", "--backend", "dcgan", "--out", "x"], "required: --data", "--help", None),
    ("command-unknown", ["trian"], "invalid choice: 'trian'", "choose from", None),
    ("config-json-unknown-key", SAMPLE + ["--model", "{d}/badtop"], "unknown key 'clas_names'",
     "Did you mean 'class_names'", None),
    ("config-json-backend-key", SAMPLE + ["--model", "{d}/badkey"], "unknown config key 'widht'",
     "Did you mean 'width'", None),
    ("config-json-backend-misspelt", SAMPLE + ["--model", "{d}/badbackend"], "names the wrong one",
     "Did you mean 'cwgan-gp'", None),
    ("config-json-backend-newer", SAMPLE + ["--model", "{d}/newbackend"], "written by gan-augment 99.0, newer",
     "pip install -U gan-augment", None),
    ("sample-out-suffix", SAMPLE + ["--out", "{d}/s.jpg"], "--out must end in .png", ".npz", None),
    ("sample-out-under-a-file", SAMPLE + ["--out", "{d}/tiny.npz/s.png"], "cannot write", "tiny.npz/s.png: a part of that path is a file, not a folder", None),
    ("sample-class-misspelt", SAMPLE + ["--class", "sqare"], "unknown class 'sqare'", "Did you mean 'square'", None),
    ("evaluate-same-splits", EVAL + ["--split", "train"], "both 'train'", "--split test", None),
    ("evaluate-n-one", EVAL + ["-n", "1"], "-n must be at least 2", "at least 2", None),
    ("evaluate-out-suffix", EVAL + ["--out", "{d}/r.txt"], "--out must end in .json", ".json", None),
    ("efficacy-filter-misspelt", EFFICACY + ["--filter", "agreemnt"], "unknown filter 'agreemnt'",
     "agreement[:MIN_CONFIDENCE]", None),
    ("efficacy-sweep-two-classes", EFFICACY + ["--cut", "disc=3", "--cut", "disc=4", "--cut", "square=2",
                                               "--cut", "square=3"], "several sizes for disc, square",
     "repeat --cut for that class only", None),
    ("extractor-steps-zero", ["train-extractor", "--data", "{d}/tiny.npz", "--out", "{d}/ext", "--steps", "0"],
     "argument --steps", "at least 1", None),
]


@pytest.mark.parametrize("argv,problem,fix,skip", [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES])
def test_cli_mistake_is_one_line_exit_2_naming_problem_and_fix(files, capsys, argv, problem, fix, skip):
    if skip:
        pytest.skip(skip)
    code, lines = run_cli([a.replace("{d}", str(files)) for a in argv], capsys)
    assert code == 2, lines
    assert len(lines) == 1, lines
    assert problem in lines[0] and fix in lines[0], lines[0]
    assert "Traceback" not in lines[0] and "allow_pickle" not in lines[0]


def test_the_table_is_long_enough():
    assert len(CLI_CASES) >= 25 and len(API_CASES) >= 10


# ---- the Python API -----------------------------------------------------------------------------
def _tiny(files):
    return ga.from_pretrained(str(files / "model"))


def _albumentations(**kw):
    from gan_augment.albumentations import GenerativeReplace

    return GenerativeReplace("pbc-cwgan-gp", **kw)


def _monai(cls_name, **kw):
    import gan_augment.monai as gm

    cls = getattr(gm, cls_name)
    return cls(keys="image", augmenter="pbc-cwgan-gp", **kw) if cls_name.endswith("d") else cls("pbc-cwgan-gp", **kw)


API_CASES = [
    ("albumentations-p-above-1", lambda f: _albumentations(p=1.5), ga.ConfigError, "p=1.5 is not a probability", "[0, 1]"),
    ("albumentations-p-negative", lambda f: _albumentations(p=-0.1), ga.ConfigError, "p=-0.1", "[0, 1]"),
    ("monai-array-prob-negative", lambda f: _monai("GenerativeReplace", prob=-0.5), ga.ConfigError,
     "prob=-0.5 is not a probability", "[0, 1]"),
    ("monai-dict-prob-above-1", lambda f: _monai("GenerativeReplaced", prob=2), ga.ConfigError,
     "prob=2 is not a probability", "[0, 1]"),
    ("create-key-misspelt", lambda f: ga.create("dcgan", imagesize=16), ga.ConfigError,
     "unknown config key 'imagesize'", "Did you mean 'image_size'"),
    ("create-backend-misspelt", lambda f: ga.create("wgan_gp"), ga.BackendNotFoundError,
     "unknown backend 'wgan_gp'", "Did you mean 'wgan-gp'"),
    ("load-pickle", lambda f: ga.load_dataset(f / "pickled.npz"), ga.DataError, "never unpickles", "np.savez("),
    ("load-object-array", lambda f: ga.load_dataset(f / "objects.npz"), ga.DataError, "holds Python objects", "np.savez("),
    ("load-bare-npy", lambda f: ga.load_dataset(f / "bare.npz"), ga.DataError, "bare .npy", "np.savez("),
    ("load-class-misspelt", lambda f: ga.load_dataset(f / "tiny.npz", classes=["sqare"]), ga.DataError,
     "unknown class 'sqare'", "Did you mean 'square'"),
    ("load-config-unknown-key", lambda f: ga.from_pretrained(str(f / "badtop")), ga.ModelLoadError,
     "unknown key 'clas_names'", "Did you mean 'class_names'"),
    ("load-config-backend-key", lambda f: ga.from_pretrained(str(f / "badkey")), ga.ModelLoadError,
     "unknown config key 'widht'", "Did you mean 'width'"),
    ("model-to-missing-gpu", lambda f: _tiny(f).to("cuda" if NO_CUDA else "cuda:99"), ga.ConfigError,
     "'cuda", "Available here: cpu"),
    ("trainer-device-unknown", lambda f: ga.Trainer(_tiny(f), steps=1, device="gpu"), ga.ConfigError,
     "unknown device 'gpu'", "Available here:"),
    ("fit-setting-misspelt", lambda f: _tiny(f).fit(f / "tiny.npz", steps=1, lr_gg=1e-4), ga.ConfigError,
     "unknown training setting 'lr_gg'", "Did you mean 'lr_g'"),
    ("fit-unlabelled-conditional", lambda f: ga.create("cwgan-gp", **{"image_size": 16, "width": 8}).fit(
        f / "unlabelled.npz", steps=1), ga.DataError, "no 'labels' array", "add labels and class_names"),
    ("fit-checkpoint-minutes-negative", lambda f: _tiny(f).fit(f / "tiny.npz", steps=1, checkpoint_minutes=-2),
     ga.ConfigError, "checkpoint_minutes must be", ">= 0 (0: off)"),
    ("fit-steps-zero", lambda f: _tiny(f).fit(f / "tiny.npz", steps=0), ga.ConfigError, "steps", "positive integer"),
    ("sample-negative", lambda f: _tiny(f).sample(-1), ga.ConfigError, "got -1", "non-negative integer"),
    ("sample-class-misspelt", lambda f: _tiny(f).sample(2, labels="sqare"), ga.ConfigError,
     "unknown class 'sqare'", "Did you mean 'square'"),
    ("mix-strategy-misspelt", lambda f: ga.SyntheticMix(ga.load_dataset(f / "tiny.npz"), _tiny(f), strategy="minorty"),
     ga.ConfigError, "strategy= must be one of", "Did you mean 'minority'"),
    ("mix-ratio-above-1", lambda f: ga.SyntheticMix(ga.load_dataset(f / "tiny.npz"), _tiny(f), ratio=1.5),
     ga.ConfigError, "got 1.5", "in [0, 1]"),
    ("mix-replace-above-1", lambda f: ga.SyntheticMix(ga.load_dataset(f / "tiny.npz"), _tiny(f), replace=1.5),
     ga.ConfigError, "replace=1.5 is not a share", "give a number in [0, 1]"),
    ("mix-synthetic-epochs-zero", lambda f: ga.SyntheticMix(ga.load_dataset(f / "tiny.npz"), _tiny(f),
                                                            synthetic_epochs=0),
     ga.ConfigError, "synthetic_epochs=0", "None (every epoch) or a number of epochs >= 1"),
]


@pytest.mark.parametrize("call,error,problem,fix", [c[1:] for c in API_CASES], ids=[c[0] for c in API_CASES])
def test_api_mistake_raises_the_right_error_naming_problem_and_fix(files, call, error, problem, fix):
    with pytest.raises(error) as info:
        call(files)
    msg = str(info.value)
    assert problem in msg and fix in msg, msg
    cause = info.value.__cause__ or (None if info.value.__suppress_context__ else info.value.__context__)
    assert "allow_pickle" not in msg + str(cause or "")


# ---- the helpers behind the messages --------------------------------------------------------------
def test_did_you_mean_suggests_the_closest_name_or_nothing():
    assert did_you_mean("widht", ["width", "height", "latent_dim"]) == " Did you mean 'width'?"
    assert did_you_mean("zzz", ["width", "height"]) == ""
    assert did_you_mean("wgan_gp", iter(["dcgan", "wgan-gp"])) == " Did you mean 'wgan-gp'?"


def test_reject_unknown_keys_names_the_key_the_closest_and_the_known_ones():
    reject_unknown_keys({"a": 1}, ["a", "b"], "cfg", ga.ConfigError)  # all known: no error
    with pytest.raises(ga.ModelLoadError, match=r"cfg has an unknown key 'bb'\. Did you mean 'b'\? "
                                                r"Known keys: a, b\. Fix it\."):
        reject_unknown_keys(["a", "bb"], ["b", "a"], "cfg", ga.ModelLoadError, fix="Fix it.")


def test_check_device_accepts_what_exists_and_names_what_does_not(monkeypatch):
    assert check_device("cpu") == torch.device("cpu")
    assert available_devices()[0] == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a machine with two GPUs
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert available_devices()[:3] == ["cpu", "cuda:0", "cuda:1"]
    assert check_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ga.ConfigError, match=r"'cuda:2' does not exist: this machine has 2 CUDA GPU\(s\)\. "
                                             r"Available here: cpu, cuda:0, cuda:1"):
        check_device("cuda:2")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ga.ConfigError, match="no CUDA GPU is available"):
        check_device(torch.device("cuda"))


def test_valid_probabilities_are_kept():
    assert _albumentations(p=0.0).p == 0.0 and _albumentations(p=1).p == 1.0
    assert _monai("GenerativeReplaced", prob=0.25).prob == 0.25


def test_config_keys_cover_everything_save_pretrained_writes(files):
    from gan_augment.core.format import CONFIG_KEYS

    model = ga.from_pretrained(str(files / "model"))
    folder = model.save_pretrained(files / "with-metrics", card=False, metrics={"fid": {"value": 1.0, "floor": 0.5}})
    assert set(json.loads((folder / "config.json").read_text())) <= CONFIG_KEYS
