"""core/folder.py is the one path of a load: one resolve, one config.json read, one hash per file,
whichever door the load comes through (gan_augment.from_pretrained, a backend's from_pretrained)."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
import torch

import gan_augment as ga
import gan_augment.core.folder as folder_mod
from gan_augment.hub.index import add_to_index

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    m = ga.create("dcgan", image_size=16, width=8)
    m.save_pretrained(tmp_path / "m")
    return m, tmp_path / "m"


@pytest.fixture
def counts(monkeypatch):
    """Count config reads, file hashes and name resolutions made by core/folder.py."""
    seen = {"reads": collections.Counter(), "hashes": collections.Counter(), "resolves": 0}
    read_config, sha256_file, local_path = folder_mod.read_config, folder_mod.sha256_file, folder_mod.local_path

    def counted_read(path):
        seen["reads"][Path(path).name] += 1
        return read_config(path)

    def counted_hash(path):
        seen["hashes"][Path(path).name] += 1
        return sha256_file(path)

    def counted_resolve(name):
        seen["resolves"] += 1
        return local_path(name)

    monkeypatch.setattr(folder_mod, "read_config", counted_read)
    monkeypatch.setattr(folder_mod, "sha256_file", counted_hash)
    monkeypatch.setattr(folder_mod, "local_path", counted_resolve)
    return seen


def samples(model):
    return model.sample(4, generator=torch.Generator().manual_seed(3))


def test_local_folder_load_reads_config_once_and_hashes_the_weights_once(saved, counts):
    model, folder = saved
    loaded = ga.from_pretrained(folder)
    assert torch.equal(samples(model), samples(loaded))
    assert counts["resolves"] == 1
    assert counts["reads"] == {"config.json": 1}
    assert counts["hashes"] == {"model.safetensors": 1}


def test_short_name_load_hashes_each_file_once(saved, hub, counts):
    model, folder = saved
    add_to_index(folder, "tiny-dcgan", "lab/tiny-dcgan", COMMIT, hub=hub)
    for c in (counts["reads"], counts["hashes"]):
        c.clear()
    counts["resolves"] = 0
    loaded = ga.from_pretrained("tiny-dcgan", local_files_only=True)
    assert torch.equal(samples(model), samples(loaded))
    assert counts["resolves"] == 1
    assert counts["reads"] == {"config.json": 1}
    # the index's digests verify the bundle; the weights' one stands in for config.json's check
    assert counts["hashes"] == {"config.json": 1, "model.safetensors": 1, "README.md": 1, "samples.png": 1}


def test_a_backend_class_has_the_same_reach_as_gan_augment_from_pretrained(saved, hub, counts):
    model, folder = saved
    add_to_index(folder, "tiny-dcgan", "lab/tiny-dcgan", COMMIT, hub=hub)
    counts["reads"].clear()
    loaded = type(model).from_pretrained("tiny-dcgan", local_files_only=True)  # a short name, by the class
    assert type(loaded) is type(model) and torch.equal(samples(model), samples(loaded))
    assert counts["reads"] == {"config.json": 1}


def test_a_tampered_weights_file_is_still_caught_when_the_index_vouches_for_nothing(saved, counts):
    """Skipping the second hash never skips the check: a local folder's weights are hashed."""
    _, folder = saved
    w = folder / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[-1] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(ga.ModelLoadError, match="does not match the sha256 recorded in config.json"):
        ga.from_pretrained(folder)


def test_load_returns_the_folder_config_and_digests(saved):
    _, folder = saved
    loaded = folder_mod.load(folder)
    assert loaded.folder == folder and loaded.config["backend"] == "dcgan"
    assert loaded.digests["model.safetensors"] == loaded.config["weights_sha256"]


def test_model_and_folder_pushes_share_one_upload(saved, monkeypatch, tmp_path):
    model, folder = saved
    staged = []

    def upload(stage, repo_id, backend, **kw):
        staged.append((repo_id, backend, sorted(p.name for p in Path(stage).iterdir()), kw["revision"]))
        return "info"

    monkeypatch.setattr(folder_mod, "upload", upload)
    assert model.push_to_hub("me/a", revision="dev") == "info"
    run = tmp_path / "run"
    model.save_pretrained(run, card=False)
    (run / "checkpoint.safetensors").write_bytes(b"not for the Hub")
    assert folder_mod.push_folder(run, "me/b") == "info"
    files = ["README.md", "config.json", "model.safetensors", "samples.png"]
    assert staged == [("me/a", "dcgan", files, "dev"), ("me/b", "dcgan", files, None)]
    assert not (run / "README.md").exists()
