"""Transfer (gan_augment/training/transfer.py) with sngan: init_from a run or model folder, new
class rows from the nearest or the mean parent class, FreezeD, the parent's sha256 on the card,
exact resume of a fine-tuned run, and the CLI flags."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import gan_augment as ga
from gan_augment.core.serialization import sha256_file
from gan_augment.testing.toy import toy_two_class_data
from gan_augment.training import transfer

SMALL = {"image_size": 16, "channels": 1, "width": 8, "latent_dim": 16}
QUIET = {"batch_size": 8, "progress": False, "device": "cpu", "seed": 0, "sample_every": 0, "checkpoint_every": 0,
         "grid_size": 4}


def train_parent(tmp_path, classes=("dark", "bright"), backend="sngan", steps=2, **cfg):
    data = toy_two_class_data(8 // len(classes), 16, 1, classes=classes)
    m = ga.create(backend, **{**SMALL, **cfg})
    m.fit(data, steps=steps, out_dir=str(tmp_path / "parent"), **QUIET)
    return m, tmp_path / "parent"


def parent_tensors(run):
    p = transfer.read_parent(run)
    return p.generator, p.discriminator


def staged_child(classes, **train):
    """A child model, its data and a trainer stand-in for start_from_parent (no training step)."""
    data = toy_two_class_data(4, 16, 1, classes=classes)
    child = ga.create("sngan", class_names=list(classes), **SMALL)
    cfg = ga.TrainConfig.build(dict(child.train_defaults), {"steps": 1, **train})
    return child, SimpleNamespace(cfg=cfg, model=child, images=data.tensor(), labels=torch.as_tensor(data.labels))


def test_known_classes_keep_their_rows_and_a_new_class_gets_the_mean(tmp_path):
    _, run = train_parent(tmp_path)
    G0, D0 = parent_tensors(run)
    child, tr = staged_child(("bright", "new", "dark"), init_from=str(run), new_class_init="mean")
    record = transfer.start_from_parent(tr)
    G, D = child.generator.state_dict(), child.discriminator.state_dict()
    key = "blocks.0.norm1.gamma.weight"
    assert torch.equal(G[key][0], G0[key][1]) and torch.equal(G[key][2], G0[key][0])
    assert torch.allclose(G[key][1], G0[key].mean(0))
    emb = "embed.parametrizations.weight.original"
    assert torch.allclose(D[emb][1], D0[emb].mean(0)) and torch.equal(D[emb][0], D0[emb][1])
    assert torch.equal(G["linear.weight"], G0["linear.weight"])  # class-free layers are copied
    assert record["classes"] == {"bright": "parent class bright", "new": "mean of the parent's classes",
                                 "dark": "parent class dark"}
    assert record["sha256"] == sha256_file(run / ga.CHECKPOINT_NAME) and record["kind"] == "run"


def test_a_new_class_starts_from_the_parent_class_its_images_score_highest_for(tmp_path):
    parent, run = train_parent(tmp_path)
    # make the parent's projection prefer class 1 ("bright") for every image: h >= 0 after ReLU
    from gan_augment.core.serialization import (
        atomic_save_safetensors,
        read_safetensors,
        read_safetensors_metadata,
    )

    path = run / ga.CHECKPOINT_NAME
    tensors, meta = read_safetensors(path), read_safetensors_metadata(path)
    emb = "D.embed.parametrizations.weight.original"
    tensors[emb] = torch.stack([-torch.ones_like(tensors[emb][0]), torch.ones_like(tensors[emb][1])])
    c = tensors[emb].shape[1]  # and its spectral norm's singular vectors, as a trained parent's agree
    tensors["D.embed.parametrizations.weight.0._u"] = torch.tensor([-1.0, 1.0]) / 2**0.5
    tensors["D.embed.parametrizations.weight.0._v"] = torch.ones(c) / c**0.5
    atomic_save_safetensors(tensors, path, metadata=meta)
    _, D0 = parent_tensors(run)
    child, tr = staged_child(("dark", "new"), init_from=str(run), new_class_init="nearest")
    record = transfer.start_from_parent(tr)
    assert record["classes"]["new"] == "nearest parent class bright"
    assert torch.equal(child.discriminator.state_dict()[emb[2:]][1], D0[emb[2:]][1])
    # the rule itself: the highest mean score under a class's label
    scores = transfer.nearest_parent_classes(_parent_model(run), tr.images[tr.labels == 1])
    assert int(torch.argmax(scores)) == 1


def _parent_model(run):
    p = transfer.read_parent(run)
    m = ga.create(p.backend, **p.config)
    m.discriminator.load_state_dict(p.discriminator)
    return m


def test_frozen_blocks_do_not_change_and_the_others_do(tmp_path):
    _, run = train_parent(tmp_path)
    _, D0 = parent_tensors(run)
    data = toy_two_class_data(4, 16, 1)
    child = ga.create("sngan", **SMALL)
    child.fit(data, steps=3, init_from=str(run), freeze_d=2, **QUIET)
    D = child.discriminator.state_dict()
    params = [k for k in D if k.endswith(("original", "bias"))]
    frozen = [k for k in params if k.startswith(("blocks.0.", "blocks.1."))]
    free = [k for k in params if k not in frozen]
    assert frozen and all(torch.equal(D[k], D0[k]) for k in frozen)
    assert any(not torch.equal(D[k], D0[k]) for k in free)


def test_the_card_and_config_record_the_parent_and_its_sha256(tmp_path):
    _, run = train_parent(tmp_path)
    data = toy_two_class_data(4, 16, 1)
    child = ga.create("sngan", **SMALL)
    child.fit(data, steps=1, init_from=str(run), freeze_d=1, **QUIET)
    child.save_pretrained(tmp_path / "child")
    digest = sha256_file(run / ga.CHECKPOINT_NAME)
    cfg = json.loads((tmp_path / "child" / "config.json").read_text())
    assert cfg["training"]["parent"]["sha256"] == digest and cfg["training"]["parent"]["source"] == str(run)
    card = (tmp_path / "child" / "README.md").read_text()
    assert digest in card and "first 1 blocks frozen" in card


def test_a_model_folder_parent_gives_the_generator_only(tmp_path):
    parent, _ = train_parent(tmp_path)
    parent.save_pretrained(tmp_path / "model", card=False)
    child, tr = staged_child(("dark", "bright"), init_from=str(tmp_path / "model"))
    record = transfer.start_from_parent(tr)
    assert record["kind"] == "model" and record["discriminator"] == "new"
    for k, v in parent.state_dict().items():  # the parent's sampling (EMA) generator
        assert torch.equal(child.generator.state_dict()[k], v)
    _, tr = staged_child(("dark", "bright"), init_from=str(tmp_path / "model"), freeze_d=1)
    with pytest.raises(ga.ConfigError, match="freeze_d needs the parent's discriminator"):
        transfer.start_from_parent(tr)
    _, tr = staged_child(("dark", "new"), init_from=str(tmp_path / "model"), new_class_init="nearest")
    with pytest.raises(ga.ConfigError, match="needs the parent's discriminator"):
        transfer.start_from_parent(tr)


def test_an_unconditional_parent_seeds_every_class(tmp_path):
    parent, run = train_parent(tmp_path, classes=("toy",), backend="sngan-uncond")
    G0, _ = parent_tensors(run)
    child, tr = staged_child(("dark", "bright"), init_from=str(run))
    record = transfer.start_from_parent(tr)
    assert record["classes"] == {"dark": "the parent's only class (toy)", "bright": "the parent's only class (toy)"}
    key = "blocks.1.norm2.beta.weight"
    assert torch.equal(child.generator.state_dict()[key], G0[key].expand(2, -1))


def test_a_parent_with_class_free_blocks_seeds_every_class_row(tmp_path):
    _, run = train_parent(tmp_path, shared_blocks=1)
    G0, _ = parent_tensors(run)
    data = toy_two_class_data(4, 16, 1, classes=("dark", "bright", "new"))
    child = ga.create("sngan", class_names=list(data.class_names), **SMALL)
    cfg = ga.TrainConfig.build({}, {"steps": 1, "init_from": str(run), "new_class_init": "mean"})
    transfer.start_from_parent(SimpleNamespace(cfg=cfg, model=child, images=data.tensor(),
                                               labels=torch.as_tensor(data.labels)))
    key = "blocks.0.norm1.gamma.weight"  # one row in the parent's shared block 0, three here
    assert G0[key].shape[0] == 1 and torch.equal(child.generator.state_dict()[key], G0[key].expand(3, -1))


def test_mismatches_are_one_clear_error(tmp_path):
    _, run = train_parent(tmp_path)
    wide = ga.create("sngan", class_names=["dark", "bright"], **{**SMALL, "width": 16})
    cfg = ga.TrainConfig.build({}, {"steps": 1, "init_from": str(run)})
    with pytest.raises(ga.ConfigError, match="width 8 in the parent, 16 here"):
        transfer.start_from_parent(SimpleNamespace(cfg=cfg, model=wide, images=None, labels=None))
    other = ga.create("cwgan-gp", class_names=["dark", "bright"], image_size=16, channels=1)
    with pytest.raises(ga.ConfigError, match="is a 'sngan' model and this run trains 'cwgan-gp'"):
        transfer.start_from_parent(SimpleNamespace(cfg=cfg, model=other, images=None, labels=None))
    _, tr = staged_child(("dark", "bright"), init_from=str(run), freeze_d=9)
    with pytest.raises(ga.ConfigError, match=r"freeze_d=9, but the sngan discriminator has 3 blocks at 16 px; pass 0..3"):
        transfer.start_from_parent(tr)
    with pytest.raises(ga.ConfigError, match="pass init_from"):
        ga.create("sngan", **SMALL).fit(toy_two_class_data(4, 16, 1), steps=1, freeze_d=1, **QUIET)
    with pytest.raises(ga.ConfigError, match="freeze_d must be a whole number"):
        ga.TrainConfig.build({}, {"steps": 1, "freeze_d": -1})
    with pytest.raises(ga.ConfigError, match="holds neither"):
        transfer.read_parent(tmp_path)


def test_a_fine_tuned_run_resumes_exactly(tmp_path):
    _, run = train_parent(tmp_path)
    data = toy_two_class_data(4, 16, 1)
    train = {"steps": 4, "init_from": str(run), "freeze_d": 1, **QUIET, "checkpoint_every": 2}
    straight = ga.create("sngan", **SMALL).fit(data, out_dir=str(tmp_path / "a"), **train)
    staged = ga.create("sngan", **SMALL)
    staged.fit(data, out_dir=str(tmp_path / "b"), stop_at=2, **train)
    digest = sha256_file(run / ga.CHECKPOINT_NAME)
    (run / ga.CHECKPOINT_NAME).rename(tmp_path / "moved")  # the parent may go: resume needs only the run
    staged = ga.create("sngan", **SMALL).fit(data, out_dir=str(tmp_path / "b"), resume=True, **train)
    for k, v in straight.state_dict().items():
        assert torch.equal(v, staged.state_dict()[k]), k
    assert staged.training_summary["parent"]["sha256"] == digest


def test_cli_init_from_and_freeze_d(tmp_path):
    from gan_augment.cli import main

    _, run = train_parent(tmp_path)
    data = toy_two_class_data(4, 16, 1)
    npz = tmp_path / "toy.npz"
    np.savez(npz, images=data.tensor().permute(0, 2, 3, 1).numpy(), labels=np.asarray(data.labels),
             class_names=np.array(data.class_names))
    out = tmp_path / "child"
    assert main(["train", "--backend", "sngan", "--data", str(npz), "--steps", "1", "--out", str(out), "--quiet",
                 "--opt", "width=8", "--opt", "latent_dim=16", "--batch-size", "8",
                 "--init-from", str(run), "--freeze-d", "2"]) == 0
    parent = json.loads((out / "config.json").read_text())["training"]["parent"]
    assert parent["freeze_d"] == 2 and parent["sha256"] == sha256_file(run / ga.CHECKPOINT_NAME)
