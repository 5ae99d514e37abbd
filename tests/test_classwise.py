"""The class-wise wrapper: one unconditional model per class, saved, loaded and sampled as one."""

import json

import pytest
import torch
from gan_augment_classwise import ClassWise, member_dirname

import gan_augment as ga
from gan_augment.core import registry
from gan_augment.core.folder import load_folder
from gan_augment.testing.toy import toy_two_class_data
from gan_augment.training.checkpoint import CHECKPOINT_NAME

TRAIN = {"steps": 2, "batch_size": 8, "progress": False, "device": "cpu", "grid_size": 4, "log_every": 1}


def _cw(**kw):
    return ga.create("classwise", **{"backend": "dcgan", "image_size": 16, "channels": 1, "width": 8,
                                     "latent_dim": 8, **kw})


def test_is_registered_through_the_entry_point_group_like_any_backend():
    info = ga.backend_info("classwise")
    assert info.cls is ClassWise and info.plugin == "classwise" and info.conditional
    assert info.distribution == "gan-augment"
    try:  # the core does not import it: without entry points there is no classwise
        assert "classwise" not in registry.reset_host(autoload=False).backends()
    finally:
        registry.reset_host()


def test_non_base_keys_go_to_every_member_and_configs_are_listed():
    m = _cw(class_names=["dark", "bright"])
    assert m.config["backend_config"] == {"width": 8, "latent_dim": 8}
    cfg = m.get_config()
    assert [c["class_names"] for c in cfg["class_configs"]] == [["dark"], ["bright"]]
    assert all(c["width"] == 8 and c["image_size"] == 16 for c in cfg["class_configs"])
    assert type(m)(**json.loads(json.dumps(cfg))).get_config() == cfg


def test_trains_one_model_per_class_in_its_own_folder(tmp_path):
    torch.manual_seed(0)
    data = toy_two_class_data(8, 16, 1)
    m = _cw().fit(data, out_dir=str(tmp_path), **TRAIN)
    assert m.class_names == ["dark", "bright"]
    for k, name in enumerate(m.class_names):
        sub = tmp_path / member_dirname(k, name)
        assert (sub / CHECKPOINT_NAME).is_file() and (sub / "samples.png").is_file()
        assert m.training_summary["per_class"][name]["images"] == 8
        assert m.training_summary["per_class"][name]["class_counts"] == {name: 8}
    assert set(m.state_dict()) == {f"{k}.{key}" for k in (0, 1) for key in m.model_for(k).state_dict()}
    loaded = load_folder(tmp_path)  # the whole wrapper is saved at the top of out_dir
    assert isinstance(loaded, ClassWise)
    g = torch.Generator
    torch.testing.assert_close(loaded.sample(3, labels="bright", generator=g().manual_seed(0)),
                               m.sample(3, labels=1, generator=g().manual_seed(0)), rtol=0, atol=0)


def test_sampling_routes_each_label_to_its_class_model():
    torch.manual_seed(0)
    m = _cw(class_names=["a", "b"])
    g = torch.Generator
    x = m.sample(3, labels="b", generator=g().manual_seed(4))
    assert torch.equal(x, m.model_for("b").sample(3, generator=g().manual_seed(4)))
    mixed = m.sample(4, labels=[1, 0, 1, 0], generator=g().manual_seed(4))
    # class 0's model draws first (its two images), then class 1's, from the same generator
    gen = g().manual_seed(4)
    a, b = m.model_for(0).sample(2, generator=gen), m.model_for(1).sample(2, generator=gen)
    assert torch.equal(mixed[[1, 3]], a) and torch.equal(mixed[[0, 2]], b)


def test_class_subset_is_selected_from_the_data():
    data = toy_two_class_data(8, 16, 1)
    m = _cw(class_names=["bright"]).fit(data, **TRAIN)
    assert m.training_summary["per_class"]["bright"]["images"] == 8
    with pytest.raises(ga.DataError, match="unknown class 'nope'"):
        _cw(class_names=["nope"]).fit(data, **TRAIN)


def test_resume_restarts_a_class_that_never_got_a_checkpoint(tmp_path):
    torch.manual_seed(0)
    data = toy_two_class_data(8, 16, 1)
    m = _cw()
    m.fit(data, out_dir=str(tmp_path), **{**TRAIN, "steps": 4, "stop_at": 2})
    (tmp_path / member_dirname(1, "bright") / CHECKPOINT_NAME).unlink()  # as if killed before class 1
    m2 = _cw().fit(data, out_dir=str(tmp_path), resume=True, **{**TRAIN, "steps": 4})
    lines = (tmp_path / member_dirname(0, "dark") / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == [1, 2, 3, 4]  # class 0 continued from step 2
    assert m2.model_for(1).training_summary["steps"] == 4  # class 1 started afresh


@pytest.mark.parametrize("kw, err, match", [
    ({"backend": "cwgan-gp"}, ga.ConfigError, "already conditional"),
    ({"backend": "classwise"}, ga.ConfigError, "wrapper itself"),
    ({"backend": "no-such-gan"}, ga.BackendNotFoundError, "unknown backend"),
    ({"widht": 8}, ga.ConfigError, "Did you mean 'width'"),
    ({"backend_config": {"image_size": 32}}, ga.ConfigError, "not inside backend_config"),
])
def test_bad_configs_are_clear_errors(kw, err, match):
    with pytest.raises(err, match=match):
        _cw(**kw)


def test_weights_for_the_wrong_number_of_classes_are_refused():
    m = _cw(class_names=["a", "b"])
    state = {k: v for k, v in m.state_dict().items() if k.startswith("0.")}
    with pytest.raises(ga.ModelLoadError, match=r"class indices \['0'\]"):
        m.load_state_dict(state)
    with pytest.raises(ga.ConfigError, match="no classes yet"):
        _cw().sample(2)


def test_ctrl_c_in_a_later_class_names_it_and_resume_finishes(tmp_path, monkeypatch):
    import os
    import signal

    torch.manual_seed(0)
    data = toy_two_class_data(8, 16, 1)
    m = _cw(class_names=["dark", "bright"])
    cls = type(m.model_for(1))
    real = cls.generator_loss

    def hooked(self, G, D, labels, ctx):
        if self is m.model_for(1) and ctx.step == 1:
            os.kill(os.getpid(), signal.SIGINT)
        return real(self, G, D, labels, ctx)

    monkeypatch.setattr(cls, "generator_loss", hooked)
    with pytest.raises(ga.TrainingInterrupted, match=r"class 2 of 2 \('bright'\): stopped at step 2 \(SIGINT\); "
                                                     r"checkpoint at .*; classes finished: dark; continue with "
                                                     r"--resume and the same --backend classwise") as info:
        m.fit(data, out_dir=str(tmp_path), **{**TRAIN, "steps": 4, "checkpoint_every": 100})
    assert info.value.checkpoint == tmp_path / member_dirname(1, "bright") / CHECKPOINT_NAME
    assert json.loads((tmp_path / member_dirname(1, "bright") / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 2
    monkeypatch.undo()
    m2 = _cw(class_names=["dark", "bright"]).fit(data, out_dir=str(tmp_path), resume=True,
                                                 **{**TRAIN, "steps": 4, "checkpoint_every": 100})
    assert [m2.model_for(k).training_summary["steps"] for k in (0, 1)] == [4, 4]


def test_cli_classwise_run_stopped_in_its_second_class_resumes_with_resume(tmp_path, monkeypatch, capsys):
    import os
    import signal

    import numpy as np

    from gan_augment.cli import main

    data = toy_two_class_data(8, 16, 1)
    npz = tmp_path / "toy.npz"
    np.savez(npz, images=data.tensor().permute(0, 2, 3, 1).numpy(), labels=data.labels,
             class_names=np.array(data.class_names))
    out = tmp_path / "run"
    argv = ["train", "--backend", "classwise", "--data", str(npz), "--steps", "3", "--out", str(out), "--quiet",
            "--batch-size", "8", "--checkpoint-every", "100", "--opt", "backend=dcgan", "--opt", "width=8",
            "--opt", "latent_dim=8"]
    dcgan = ga.backend_info("dcgan").cls
    real, calls = dcgan.generator_loss, []

    def hooked(self, G, D, labels, ctx):
        calls.append(ctx.step)
        if len(calls) == 3 + 1:  # class 2's second step
            os.kill(os.getpid(), signal.SIGINT)
        return real(self, G, D, labels, ctx)

    monkeypatch.setattr(dcgan, "generator_loss", hooked)
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert f"class 2 of 2 ({data.class_names[1]!r}): stopped at step 1 (SIGINT)" in err
    assert "continue with --resume and the same --backend classwise" in err
    monkeypatch.undo()
    resume = [a for a in argv if a not in ("--steps", "3")] + ["--resume"]
    assert main(resume) == 0
    from gan_augment.training.checkpoint import read_trainer_state

    steps = [read_trainer_state(out / member_dirname(k, c) / CHECKPOINT_NAME)["step"]
             for k, c in enumerate(data.class_names)]
    assert steps == [3, 3] and ga.from_pretrained(str(out)).class_names == data.class_names
