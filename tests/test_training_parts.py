"""The parts of the adversarial component on their own: the adoption step, the Trainable protocol
and the model's public handles, the prepare-stage handle, the seed rule, and the checkpoint and
monitor functions that take explicit inputs."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import gan_augment as ga
from gan_augment.training import checkpoint as ckpt
from gan_augment.training import monitors
from gan_augment.training.config import noise_seed
from gan_augment.training.loop import Trainer
from gan_augment.training.trainable import TRAINABLE_MEMBERS, check_trainable

TINY = dict(image_size=16, width=8, latent_dim=8)
FAST = dict(steps=1, batch_size=8, progress=False, sample_every=0, log_every=1, grid_size=4, device="cpu")


# ---- the adoption step ---------------------------------------------------------------------
def test_adoption_takes_layout_and_class_names_and_says_so(tiny_npz):
    data = ga.load_dataset(tiny_npz)
    m = ga.create("cwgan-gp", width=8, latent_dim=8)  # conditional, nothing given
    adoption = m.adopt_data(data)
    assert adoption.layout_adopted and m.image_shape == (3, 16, 16)
    assert m.class_names == ["disc", "square"]
    assert adoption.lines == ["data: 48 RGB images 16x16 -> model 3 channels, 16 px"]
    assert adoption.data.image_size == 16 and adoption.data.channels == 3
    again = ga.create("cwgan-gp", **TINY, channels=3).adopt_data(data)  # given: the line, not news
    assert not again.layout_adopted and again.lines == adoption.lines


def test_adoption_notes_an_unconditional_model_on_several_classes(tiny_npz):
    m = ga.create("dcgan", **TINY)
    lines = m.adopt_data(ga.load_dataset(tiny_npz)).lines
    assert lines[1] == ("note: dcgan is unconditional; training one model on all of ['disc', 'square']. "
                        "Pass --classes to train on one class.")
    assert m.config["class_names"] is None
    one = ga.create("dcgan", **TINY)
    assert len(one.adopt_data(ga.load_dataset(tiny_npz, classes=["disc"])).lines) == 1
    assert one.class_names == ["disc"]


def test_adoption_refuses_unlabelled_data_for_a_conditional_model_and_other_classes(tmp_path, tiny_npz):
    path = tmp_path / "images_only.npz"
    np.savez(path, images=np.zeros((4, 16, 16, 3), dtype=np.uint8))
    with pytest.raises(ga.DataError, match="no 'labels' array, and cwgan-gp is conditional"):
        ga.create("cwgan-gp", **TINY).adopt_data(path)
    assert ga.create("dcgan", **TINY).adopt_data(path).lines[0].endswith("; no labels: one class")
    other = ga.create("cwgan-gp", **TINY, class_names=["square", "disc"])
    with pytest.raises(ga.ConfigError, match="differ from the model's"):
        other.adopt_data(tiny_npz)
    kept = ga.create("cwgan-gp", **TINY, class_names=["square"]).adopt_data(tiny_npz, select_classes=True)
    assert kept.data.class_names == ["square"] and len(kept.data) == 24


def test_adopted_class_names_rebuild_a_conditional_network(tiny_npz):
    m = ga.create("cwgan-gp", **TINY, class_names=["a", "b", "c"])
    before = m.generator
    m.adopt_class_names(["disc", "square"])
    assert m.generator is not before and m.num_classes == 2


def test_python_fit_prints_the_data_line_when_the_layout_came_from_the_data(tiny_npz, capsys):
    data = ga.load_dataset(tiny_npz, classes=["disc"])
    ga.create("dcgan", width=8, latent_dim=8).fit(data, **{**FAST, "progress": True})
    assert capsys.readouterr().err.splitlines()[0] == "data: 24 RGB images 16x16 -> model 3 channels, 16 px"
    ga.create("dcgan", **TINY).fit(data, **FAST)
    assert "data:" not in capsys.readouterr().err
    ga.create("dcgan", **TINY).fit(data, **FAST, show_data=True)
    assert capsys.readouterr().err.splitlines()[0].startswith("data: 24 RGB images")


def test_the_cli_trains_through_model_fit(tiny_npz, tmp_path, monkeypatch):
    from gan_augment.cli import main

    calls = []
    real_fit = ga.AdversarialAugmenter.fit

    def fit(self, data, **cfg):
        calls.append(cfg)
        return real_fit(self, data, **cfg)

    monkeypatch.setattr(ga.AdversarialAugmenter, "fit", fit)
    assert main(["train", "--backend", "dcgan", "--data", str(tiny_npz), "--classes", "disc", "--steps", "1",
                 "--out", str(tmp_path / "run"), "--quiet", "--batch-size", "8", "--opt", "width=8"]) == 0
    assert len(calls) == 1 and calls[0]["show_data"] is True and calls[0]["progress"] is False


# ---- the protocol and the model's handles -------------------------------------------------
def test_the_loop_names_what_a_model_lacks():
    for member in ("generator", "replace_networks", "attach_ema", "adopt_data", "prepare", "generator_loss"):
        assert member in TRAINABLE_MEMBERS
    check_trainable(ga.create("dcgan", **TINY))

    class Half:
        name, conditional, train_defaults = "half", False, {}

    with pytest.raises(ga.ConfigError, match="not Half: it lacks .*generator.*replace_networks"):
        check_trainable(Half())


def test_networks_and_ema_change_only_through_the_public_handles():
    m = ga.create("dcgan", **TINY)
    G, D = m.generator, m.discriminator
    G2, D2 = torch.nn.SyncBatchNorm.convert_sync_batchnorm(G), torch.nn.SyncBatchNorm.convert_sync_batchnorm(D)
    m.replace_networks(G2, D2)
    assert m.generator is G2 and m.discriminator is D2 and m.sampling_module() is G2
    from torch.optim.swa_utils import AveragedModel

    ema = AveragedModel(G2)
    m.attach_ema(ema)
    assert m.ema is ema and m.sampling_module() is ema.module
    m.attach_ema(None)
    assert m.sampling_module() is G2
    m.rebuild()
    assert m.ema is None and m.generator is not G2


def test_the_trainer_sets_no_private_attribute_of_a_model(tiny_npz):
    writes = []

    class Watched(type(ga.create("dcgan", **TINY))):
        name = "dcgan"

        def __setattr__(self, key, value):
            writes.append((key, Path(sys._getframe(1).f_code.co_filename).name))
            super().__setattr__(key, value)

    m = Watched(**TINY, channels=3)
    Trainer(m, **FAST, ema_decay=0.9).fit(ga.load_dataset(tiny_npz, classes=["disc"]))
    by_trainer = {k for k, where in writes if where in ("loop.py", "checkpoint.py", "monitors.py")}
    assert by_trainer == {"training_summary"} and m.ema is not None


# ---- the prepare-stage handle ---------------------------------------------------------------
def test_a_prepare_stage_gets_the_runs_rows_seed_and_steps_not_the_trainer(tiny_npz):
    t = Trainer(ga.create("dcgan", **TINY), **FAST, seed=5)
    t._setup(ga.load_dataset(tiny_npz))
    ctx = t.prepare_context()
    assert ctx.images is t.images and ctx.labels is t.labels and ctx.seed == 5 and ctx.device == t.device
    assert list(ctx.steps(3, "warm-up")) == [0, 1, 2]
    ctx.broadcast(t.model.generator)  # one process: nothing to share
    with ctx.autocast():
        pass
    assert not hasattr(ctx, "cfg") and not hasattr(ctx, "model")


def test_bagan_prepares_from_a_hand_made_handle():
    from gan_augment.testing.toy import toy_two_class_data

    data = toy_two_class_data(8, 16, 1)
    m = ga.create("bagan", image_size=16, channels=1, width=8, latent_dim=6, ae_steps=4, ae_batch_size=8,
                  class_names=data.class_names)
    ctx = ga.PrepareContext(data.tensor(), torch.as_tensor(data.labels), torch.device("cpu"), 0, 1,
                            lambda n, what: iter(range(n)), contextlib.nullcontext)
    m.prepare(ctx)
    assert len(m.ae_history) == 4 and m.encoder is not None


# ---- the seed rule ----------------------------------------------------------------------------
def test_noise_seed_is_the_one_formula_the_loop_uses(tiny_npz):
    assert noise_seed(3, 1) == 3 * 7919 + 17 + 1 and noise_seed(3, 1, 2) == noise_seed(3, 1) + 2 * 104729
    t = Trainer(ga.create("dcgan", **TINY), **FAST, seed=3)
    t._setup(ga.load_dataset(tiny_npz))
    assert torch.equal(t.rng.get_state(), torch.Generator().manual_seed(noise_seed(3, 0)).get_state())


# ---- checkpoint functions -----------------------------------------------------------------
def _parts():
    net = torch.nn.Linear(2, 2)
    opt = torch.optim.Adam(net.parameters())
    net(torch.ones(1, 2)).sum().backward()
    opt.step()
    return net, {"opt_g": opt, "sched_g": None}


def test_checkpoint_round_trip_of_what_it_is_given(tmp_path):
    m = ga.create("dcgan", **TINY)
    net, parts = _parts()
    rng = torch.Generator().manual_seed(9)
    path = ckpt.write_checkpoint(tmp_path / ckpt.CHECKPOINT_NAME, m, parts, [rng.get_state()],
                                 {"step": 7, "backend": "dcgan", "world_size": 1})
    assert ckpt.checkpoint_step(path) == 7 and ckpt.read_trainer_state(path)["skeleton"]["sched_g"] is None
    fresh = ga.create("dcgan", **TINY)
    opt2 = torch.optim.Adam(torch.nn.Linear(2, 2).parameters())
    state, rng_state = ckpt.load_checkpoint(path, fresh, {"opt_g": opt2}, rank=0, world=1)
    assert state["step"] == 7 and torch.equal(rng_state, rng.get_state())
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg"], parts["opt_g"].state_dict()["state"][0]["exp_avg"])
    assert all(torch.equal(a, b) for a, b in zip(fresh.generator.state_dict().values(), m.generator.state_dict().values()))
    assert ckpt.load_checkpoint(path, fresh, {}, rank=0, world=2)[1] is None  # another process count
    with pytest.raises(ga.CheckpointError, match="is a 'dcgan' run, not 'wgan-gp'"):
        ckpt.load_checkpoint(path, ga.create("wgan-gp", **TINY), {}, rank=0, world=1)
    assert ckpt.checkpoint_step(tmp_path / "missing.safetensors") == "unknown"


def test_refuse_changed_run_names_the_change_or_notes_an_old_checkpoint(tmp_path):
    now = {"data_classes": ["a"], "model_config": {"image_size": 16}, "data_sha256": "f" * 64}
    path = tmp_path / ckpt.CHECKPOINT_NAME
    assert ckpt.refuse_changed_run(path, {**now, "step": 2}, now) is None
    assert "predates data fingerprints" in ckpt.refuse_changed_run(path, {"step": 2, "data_classes": ["a"]}, now)
    with pytest.raises(ga.ConfigError, match="image size 32 -> 16 since its checkpoint"):
        ckpt.refuse_changed_run(path, {**now, "model_config": {"image_size": 32}}, now)


def test_kept_history_forgets_what_was_logged_after_the_checkpoint(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("".join(json.dumps({"step": s}) + "\n" for s in (1, 2, 3)))
    assert ckpt.kept_history(metrics, 2, rewrite=False) == [{"step": 1}, {"step": 2}]
    assert len(metrics.read_text().splitlines()) == 3
    ckpt.kept_history(metrics, 2, rewrite=True)
    assert len(metrics.read_text().splitlines()) == 2
    assert ckpt.kept_history(tmp_path / "none.jsonl", 2, rewrite=True) == []


# ---- monitor functions ------------------------------------------------------------------------
class Settings:
    monitor_every, log_every, collapse_threshold, divergence_patience = 2, 1, 0.5, 2


def test_diversity_is_zero_for_identical_samples_and_grows_with_spread():
    assert monitors.diversity(torch.zeros(4, 1, 2, 2)) == 0.0
    x = torch.tensor([[-1.0] * 4, [1.0] * 4]).view(2, 1, 2, 2)
    assert monitors.diversity(x) == pytest.approx(2.0)


def test_check_health_finds_collapse_then_divergence():
    state, history = {}, [{"d_loss": 1.0}]
    assert monitors.check_health(state, history, 1.0, 2, Settings) is None
    assert history[-1]["diversity"] == 1.0 and state["diversity_first"] == 1.0
    assert "mode collapse at step 4" in monitors.check_health(state, history, 0.4, 4, Settings)
    state = {}
    for step, d in enumerate((1.0, 2.0, 3.0)):
        problem = monitors.check_health(state, [{"d_loss": d}], 1.0, step, Settings)
    assert "possible divergence at step 2" in problem and state["worse_count"] == 2
    assert monitors.is_best(None, 0.1) and monitors.is_best({"diversity": 0.1}, 0.1)
    assert not monitors.is_best({"diversity": 0.2}, 0.1)


def test_first_non_finite_names_the_first_bad_row():
    assert monitors.first_non_finite(torch.ones(3, 2)) == 3
    assert monitors.first_non_finite(torch.tensor([[1.0, 1.0], [1.0, float("nan")], [float("inf"), 1.0]])) == 1


# ---- EMA and rank agreement ------------------------------------------------------------------
def test_ema_warm_up_and_update_follow_the_step_it_is_given():
    from gan_augment.training.distributed import any_rank
    from gan_augment.training.ema import make_ema, warmup_decay

    assert warmup_decay(0.999, 0) == pytest.approx(0.1) and warmup_decay(0.5, 1000) == 0.5
    G = torch.nn.Sequential(torch.nn.Linear(1, 1, bias=False), torch.nn.BatchNorm1d(1))
    step = [5]
    ema = make_ema(G, 0.999, lambda: step[0])
    with torch.no_grad():
        G[0].weight.fill_(1.0)
        ema.update_parameters(G)  # the first update copies
        G[0].weight.fill_(3.0)
        G[1].num_batches_tracked.fill_(7)
        ema.update_parameters(G)
    d = warmup_decay(0.999, 5)
    assert float(ema.module[0].weight.detach()) == pytest.approx(d * 1.0 + (1 - d) * 3.0)
    assert int(ema.module[1].num_batches_tracked) == 7
    assert any_rank(1, torch.device("cpu"), True, False) == (True, False)
