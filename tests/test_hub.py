"""Local save/load, model cards, load errors, the short-name index and its bundled copies.

Nothing here touches the network: bundled short names must resolve with no Hub at all, and the
Hub paths get local_files_only=True plus an empty cache. Hub downloads are in test_hub_server.py.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import auto_precision
from safetensors.torch import load_file, save_file

import gan_augment as ga
from gan_augment.core.errors import ConfigError, ModelLoadError
from gan_augment.core.folder import find, load_folder, local_path
from gan_augment.core.format import FORMAT_VERSION
from gan_augment.core.serialization import sha256_file
from gan_augment.core.short_names import load_index
from gan_augment.hub.index import add_to_index, remove_from_index
from gan_augment.training import precision

ROOT = Path(__file__).resolve().parents[1]
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def tiny(**kw):
    return ga.create("dcgan", image_size=16, width=8, **kw)


def samples(model, seed=7, n=6):
    return model.sample(n, generator=torch.Generator().manual_seed(seed))


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    m = tiny()
    m.save_pretrained(tmp_path / "m")
    return m, tmp_path / "m"


def load_err(path, match):
    with pytest.raises(ModelLoadError, match=match) as e:
        ga.from_pretrained(path)
    assert "\n" not in str(e.value), "errors must be one line"
    return str(e.value)


# ---- round trip and card ------------------------------------------------------------------------
def test_round_trip_gives_identical_samples(saved):
    model, folder = saved
    loaded = ga.from_pretrained(folder)
    assert type(loaded) is type(model) and loaded.get_config() == model.get_config()
    assert torch.equal(samples(model), samples(loaded))
    assert not torch.equal(samples(model, seed=7), samples(model, seed=8))  # the seed matters


def test_trainer_style_save_is_cheap_and_loadable(tmp_path):
    m = tiny()
    assert m.save_pretrained(tmp_path / "run", card=False) == tmp_path / "run"
    assert {p.name for p in (tmp_path / "run").iterdir()} == {"config.json", "model.safetensors"}
    assert torch.equal(samples(m), samples(load_folder(tmp_path / "run")))


def test_config_records_contract_and_weights_hash(saved):
    _, folder = saved
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["format_version"] == FORMAT_VERSION and cfg["backend"] == "dcgan"
    assert cfg["image_shape"] == [3, 16, 16] and cfg["class_names"] == ["all"]
    assert cfg["normalization"]["sample_range"] == [0.0, 1.0]
    assert cfg["weights_sha256"] == sha256_file(folder / "model.safetensors")


def test_model_card_front_matter_parses_with_huggingface_hub(tmp_path):
    from huggingface_hub import ModelCard, metadata_load

    m = tiny()
    m.training_summary = {"images": 120, "data_source": "pbc_neutrophil_64.npz", "steps": 10}
    m.save_pretrained(tmp_path / "m", license="cc-by-4.0", datasets=["someone/pbc"],
                      metrics={"fid": {"value": 41.2, "floor": 5.1}, "kid": 0.03})
    meta = metadata_load(tmp_path / "m" / "README.md")
    assert meta["library_name"] == "gan-augment" and meta["license"] == "cc-by-4.0"
    assert "gan-augment" in meta["tags"] and "dcgan" in meta["tags"]
    assert meta["datasets"] == ["someone/pbc"] and meta["metrics"] == ["fid", "kid"]
    card = ModelCard.load(tmp_path / "m" / "README.md")
    assert card.data.library_name == "gan-augment"
    text = card.text
    assert "![samples](samples.png)" in text and (tmp_path / "m" / "samples.png").stat().st_size > 100
    assert "not be used for diagnosis" in text
    assert "Acevedo" in text and "10.1016/j.dib.2020.105474" in text  # PBC provenance + citation
    assert "| fid | 41.2 | 5.1 |" in text and "| kid | 0.03 |" in text
    assert json.loads((tmp_path / "m" / "config.json").read_text())["metrics"]["kid"] == 0.03


def test_card_states_the_precision_and_diffaugment_of_the_training_run(tmp_path):
    from gan_augment.core.data import ImageDataset

    m = tiny()
    images = np.random.default_rng(0).integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)
    data = ImageDataset(images, np.zeros(8, dtype=np.int64), ["all"])
    m.fit(data, steps=1, batch_size=4, diffaugment="translation", progress=False, out_dir=str(tmp_path / "run"))
    text = m.generate_model_card().text
    chosen = precision.describe(precision.resolve_precision("auto", torch.device("cpu")), "auto", torch.device("cpu"))
    assert chosen.startswith(auto_precision())  # what this CPU (or GAN_AUGMENT_TEST_PRECISION) chose
    assert f"- precision: {chosen}" in text and "- DiffAugment: translation" in text
    plain = tiny()
    plain.training_summary = {"steps": 3}  # a summary from before these were recorded
    text = plain.generate_model_card().text
    assert "- precision: not recorded" in text and "- DiffAugment: not recorded" in text


def test_card_says_when_no_metrics_were_measured(saved):
    text = (saved[1] / "README.md").read_text()
    assert "None measured yet" in text and "Acevedo" not in text  # no invented provenance


# ---- load errors: one line, problem and fix -----------------------------------------------------
def test_truncated_safetensors(saved):
    _, folder = saved
    w = folder / "model.safetensors"
    w.write_bytes(w.read_bytes()[:1000])
    load_err(folder, "not a readable safetensors file.*truncated or corrupted.*Download or copy it again")


def test_corrupted_payload_is_caught_by_sha256(saved):
    _, folder = saved
    w = folder / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[-3] ^= 0x55  # inside the last tensor: the safetensors header is intact
    w.write_bytes(bytes(data))
    load_file(str(w))  # safetensors alone does not notice ...
    load_err(folder, "does not match the sha256 recorded in config.json.*download or copy it again")


def test_missing_weights(saved):
    (saved[1] / "model.safetensors").unlink()
    load_err(saved[1], "no model.safetensors; the folder is incomplete")


def test_missing_config(saved):
    (saved[1] / "config.json").unlink()
    load_err(saved[1], "has no config.json; it is not a gan-augment model folder")


def test_newer_format_version(saved):
    p = saved[1] / "config.json"
    cfg = json.loads(p.read_text())
    cfg["format_version"] = FORMAT_VERSION + 1
    p.write_text(json.dumps(cfg))
    load_err(saved[1], r"newer than this gan-augment.*pip install -U gan-augment")


def test_unknown_backend_names_the_package(saved):
    p = saved[1] / "config.json"
    cfg = json.loads(p.read_text())
    cfg.update(backend="stylegan9", backend_distribution="gan-augment-stylegan9")
    p.write_text(json.dumps(cfg))
    load_err(saved[1], r"needs the backend 'stylegan9', which is not installed; install its package: `pip install gan-augment-stylegan9`")


def test_wrong_tensor_shapes(saved):
    p = saved[1] / "config.json"
    cfg = json.loads(p.read_text())
    cfg["config"]["width"] = 16  # weights were saved at width 8
    p.write_text(json.dumps(cfg))
    load_err(saved[1], r"wrong shapes .*saved for a different config")


def test_missing_and_unexpected_keys(saved):
    _, folder = saved
    w = folder / "model.safetensors"
    state = load_file(str(w))
    k = sorted(state)[0]
    state["extra.weight"] = state.pop(k)
    save_file(state, str(w), metadata={"format": "pt", "backend": "dcgan"})
    cfg = json.loads((folder / "config.json").read_text())
    cfg.pop("weights_sha256")  # reach the strict key check
    (folder / "config.json").write_text(json.dumps(cfg))
    msg = load_err(folder, "missing keys")
    assert "unexpected keys ['extra.weight']" in msg


def test_torch_compile_prefix_is_removed_then_keys_are_exact(saved):
    """Weights saved from a torch.compile'd generator carry `_orig_mod.`; they load into the plain one."""
    model, folder = saved
    w = folder / "model.safetensors"
    save_file({f"_orig_mod.{k}": v for k, v in load_file(str(w)).items()}, str(w),
              metadata={"format": "pt", "backend": "dcgan"})
    cfg = json.loads((folder / "config.json").read_text())
    cfg["weights_sha256"] = sha256_file(w)
    (folder / "config.json").write_text(json.dumps(cfg))
    assert torch.equal(samples(model), samples(ga.from_pretrained(folder)))


def test_weights_of_another_backend(saved):
    _, folder = saved
    w = folder / "model.safetensors"
    save_file(load_file(str(w)), str(w), metadata={"format": "pt", "backend": "wgan-gp"})
    cfg = json.loads((folder / "config.json").read_text())
    cfg.pop("weights_sha256")
    (folder / "config.json").write_text(json.dumps(cfg))
    load_err(folder, "holds 'wgan-gp' weights but config.json says 'dcgan'")


def test_unknown_name_lists_short_names(hub):
    hub.mkdir()
    (hub / "index.json").write_text("{}")
    load_err("no-such-model", "not a local folder, a short name .* or a Hub repo id")


def test_repo_id_with_empty_cache_and_local_files_only(hub, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # CI runs with HF_HUB_OFFLINE=1
    with pytest.raises(ModelLoadError, match="not in the Hub cache .* local_files_only=True") as e:
        ga.from_pretrained("someone/absent", local_files_only=True)
    assert "\n" not in str(e.value)


def test_config_never_imports_code(saved, tmp_path, monkeypatch):
    """A config naming an importable module as its backend is looked up in the registry only."""
    (tmp_path / "evilmod.py").write_text(f"open({str(tmp_path / 'ran')!r}, 'w').write('x')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    p = saved[1] / "config.json"
    cfg = json.loads(p.read_text())
    cfg.update(backend="evilmod", backend_distribution="evilmod")
    p.write_text(json.dumps(cfg))
    load_err(saved[1], "needs the backend 'evilmod', which is not installed")
    assert "evilmod" not in sys.modules and not (tmp_path / "ran").exists()


# ---- short names and the bundled copy ------------------------------------------------------------
def test_short_name_resolves_from_bundled_copy_offline(saved, hub, caplog):
    model, folder = saved
    entry = add_to_index(folder, "tiny-dcgan", "lab/tiny-dcgan", COMMIT, hub=hub)
    assert set(entry["files"]) == {"config.json", "model.safetensors", "README.md", "samples.png"}
    assert entry["files"]["model.safetensors"] == sha256_file(folder / "model.safetensors")
    assert (hub / "tiny-dcgan" / "model.safetensors").is_file()
    caplog.set_level(logging.INFO, logger="gan_augment.hub")
    loaded = ga.from_pretrained("tiny-dcgan", local_files_only=True)
    assert torch.equal(samples(model), samples(loaded))
    assert "using the copy bundled with gan-augment" in caplog.text and "sha256 of 4 files verified" in caplog.text


def test_tampered_bundle_is_not_used(saved, hub, caplog):
    _, folder = saved
    add_to_index(folder, "tiny-dcgan", "lab/tiny-dcgan", COMMIT, hub=hub)
    cfg = hub / "tiny-dcgan" / "config.json"
    cfg.write_text(cfg.read_text().replace('"width": 8', '"width": 8 '))
    with pytest.raises(ModelLoadError, match="bundled copy .* fails its sha256 check for config.json.*Hub copy is unavailable") as e:
        ga.from_pretrained("tiny-dcgan", local_files_only=True)
    assert "\n" not in str(e.value)
    assert "trying the Hub copy instead" in caplog.text


def test_short_name_pins_its_revision(saved, hub):
    add_to_index(saved[1], "tiny-dcgan", "lab/tiny-dcgan", COMMIT, hub=hub)
    with pytest.raises(ConfigError, match="pinned to revision .* lab/tiny-dcgan@v2"):
        find("tiny-dcgan", revision="v2")


def test_local_folder_wins_over_short_name(saved, hub, tmp_path, monkeypatch):
    add_to_index(saved[1], "tiny-dcgan", "lab/tiny-dcgan", COMMIT, hub=hub)
    monkeypatch.chdir(tmp_path)
    shutil.copytree(saved[1], tmp_path / "tiny-dcgan-local")
    assert find("tiny-dcgan-local").folder == Path("tiny-dcgan-local")


@pytest.mark.parametrize("bad, match", [
    ({"repo_id": "x/y", "revision": "main", "files": {}}, "not a 40-character commit hash"),
    ({"repo_id": "nope", "revision": COMMIT, "files": {}}, "not of the form owner/name"),
    ({"repo_id": "x/y", "revision": COMMIT, "files": {"config.json": "0" * 64}}, "must list at least"),
    ({"repo_id": "x/y", "revision": COMMIT, "files": {"config.json": "0" * 64, "model.safetensors": "abc"}},
     "not 64 lowercase hex"),
    ({"repo_id": "x/y", "revision": COMMIT, "folder": "../../etc",
      "files": {"config.json": "0" * 64, "model.safetensors": "1" * 64}}, "relative path inside hub"),
    ({"repo_id": "x/y", "revision": COMMIT,
      "files": {"config.json": "0" * 64, "model.safetensors": "1" * 64, "evil.py": "2" * 64}}, "never loads"),
])
def test_index_entries_are_validated(hub, bad, match):
    hub.mkdir()
    (hub / "index.json").write_text(json.dumps({"m": bad}))
    with pytest.raises(ModelLoadError, match=match):
        load_index(hub)


def test_add_to_index_refuses_branches_broken_models_and_silent_overwrites(saved, hub, tmp_path):
    _, folder = saved
    with pytest.raises(ConfigError, match="commit hash"):
        add_to_index(folder, "tiny", "lab/tiny", "main", hub=hub)
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    (broken / "model.safetensors").write_bytes(b"junk")
    with pytest.raises(ModelLoadError):
        add_to_index(broken, "tiny", "lab/tiny", COMMIT, hub=hub)
    assert not (hub / "index.json").exists()
    add_to_index(folder, "tiny", "lab/tiny", COMMIT, hub=hub)
    with pytest.raises(ConfigError, match="already listed"):
        add_to_index(folder, "tiny", "lab/other", COMMIT, hub=hub)
    add_to_index(folder, "tiny", "lab/other", COMMIT, hub=hub, overwrite=True, bundle=False)
    assert load_index(hub)["tiny"]["repo_id"] == "lab/other" and load_index(hub)["tiny"]["folder"] is None
    remove_from_index("tiny", hub=hub)
    assert load_index(hub) == {} and not list(hub.glob(".*tmp"))


def test_hub_index_cli(saved, hub, capsys):
    from gan_augment.hub.index import main

    assert main([str(saved[1]), "tiny", "lab/tiny", "main", "--hub", str(hub)]) == 2
    assert "commit hash" in capsys.readouterr().err
    assert main([str(saved[1]), "tiny", "lab/tiny", COMMIT, "--hub", str(hub), "--no-bundle"]) == 0
    assert json.loads(capsys.readouterr().out)["tiny"]["repo_id"] == "lab/tiny"
    assert "tiny" in load_index(hub) and not (hub / "tiny").exists()


def test_repository_index_is_valid_and_its_bundles_verify():
    """hub/index.json as committed: every entry valid, every bundled file matching its sha256."""
    index = load_index(ROOT / "hub")
    assert isinstance(index, dict)
    for name, e in index.items():
        if e.get("folder"):
            for f, digest in e["files"].items():
                assert sha256_file(ROOT / "hub" / e["folder"] / f) == digest, (name, f)


def test_package_sees_the_repository_hub_folder(monkeypatch):
    """In the editable install gan_augment._hub is the repository's hub/ itself (no copy, no link)."""
    from gan_augment.core.short_names import hub_dir

    monkeypatch.delenv("GAN_AUGMENT_HUB_DIR", raising=False)
    assert hub_dir() == ROOT / "hub" and (hub_dir() / "index.json").is_file()
    assert not (ROOT / "gan_augment" / "_hub").exists()


# ---- CLI ------------------------------------------------------------------------------------------
def test_cli_info_and_models(saved, hub, capsys):
    from gan_augment.cli import main

    add_to_index(saved[1], "tiny-dcgan", "lab/tiny-dcgan", COMMIT, hub=hub, description="test model")
    assert main(["info", "tiny-dcgan"]) == 0
    out = capsys.readouterr().out
    for want in ("dcgan", "16x16, 3 channels", "cc-by-4.0", "classes", "none measured"):
        assert want in out
    assert main(["info", str(saved[1]), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["backend"] == "dcgan"
    assert main(["models"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("tiny-dcgan"))
    assert "bundled (offline); also on the Hub as lab/tiny-dcgan@0123456789ab" in line and line.endswith("test model")
    assert main(["info", "nope-nothing"]) == 2
    assert "error:" in capsys.readouterr().err


def test_unpushed_model_loads_from_its_bundle_and_says_so_when_damaged(saved, hub):
    """A model listed before its first push (revision None) has only the bundled copy."""
    model, folder = saved
    with pytest.raises(ConfigError, match="must be bundled"):
        add_to_index(folder, "tiny-dcgan", "lab/tiny-dcgan", None, hub=hub, bundle=False)
    entry = add_to_index(folder, "tiny-dcgan", "lab/tiny-dcgan", None, hub=hub)
    assert entry["revision"] is None
    assert torch.equal(samples(model), samples(ga.from_pretrained("tiny-dcgan")))
    (hub / "tiny-dcgan" / "model.safetensors").write_bytes(b"damaged")
    msg = load_err("tiny-dcgan", "not on the Hub yet")
    assert "fails its sha256 check" in msg and "reinstall" in msg


# ---- local paths are never sent to the Hub (issue 15) -------------------------------------------
@pytest.mark.parametrize("name, local", [
    ("./neutro", True), ("/abs/neutro", True), ("~/neutro", True), ("runs\\neutro", True),
    ("a/b/c", True), ("runs/", True), ("owner/name", False), ("owner/name@v1", False),
    ("neutrophil-wgan-gp", False), ("hf://runs/neutro", False),
])
def test_local_path_rule(name, local, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert (local_path(name) is not None) == local


def test_two_part_name_is_local_when_its_first_part_is_a_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert local_path("runs/neutro") is None  # could be the Hub repo runs/neutro ...
    (tmp_path / "runs").mkdir()
    assert local_path("runs/neutro") == Path("runs/neutro")  # ... but ./runs exists: a path
    assert local_path(Path("owner/name")) == Path("owner/name")  # a Path object is always a path


def test_readme_runs_neutro_without_the_folder_says_so_in_one_line(saved, tmp_path, monkeypatch, capsys):
    """`gan-augment sample --model runs/neutro` after `make demo` (runs/demo exists) but before training
    runs/neutro: a one-line missing-folder error, with no Hub look-up at all."""
    from huggingface_hub import constants

    from gan_augment.cli import main

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # any Hub call would fail loudly
    monkeypatch.chdir(tmp_path)
    shutil.copytree(saved[1], tmp_path / "runs" / "demo")
    msg = load_err("runs/neutro", r"^no model folder at runs/neutro \(runs/ holds demo\)")
    assert "hf://owner/name" in msg
    assert main(["sample", "--model", "runs/neutro", "-n", "4", "--out", "grid.png"]) == 2
    err = capsys.readouterr().err
    assert "no model folder at runs/neutro" in err and len(err.strip().splitlines()) == 1
    load_err("./runs/neutro", "no model folder at runs/neutro")
    load_err("other/place/model", r"no model folder at other/place/model \(other/place/ does not exist")


# ---- the ModelHubMixin integration --------------------------------------------------------------
def test_every_backend_is_a_model_hub_mixin_with_one_config(saved):
    from huggingface_hub import ModelHubMixin

    model, folder = saved
    assert isinstance(model, ModelHubMixin)
    assert model._hub_mixin_config is None  # the mixin's copy of the raw __init__ args is not kept
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["config"] == model.get_config() and cfg["backend"] == "dcgan"


def test_backend_class_loads_its_own_folders_only(saved, tmp_path):
    model, folder = saved
    cls = type(model)
    loaded = cls.from_pretrained(folder)
    assert type(loaded) is cls and torch.equal(samples(model), samples(loaded))
    ga.create("wgan-gp", image_size=16, width=8).save_pretrained(tmp_path / "w", card=False)
    with pytest.raises(ModelLoadError, match="holds a 'wgan-gp' model, not a 'dcgan' one.*gan_augment.from_pretrained"):
        cls.from_pretrained(tmp_path / "w")
    with pytest.raises(ConfigError, match="cannot tell which backend to build"):
        ga.GenerativeAugmenter.from_pretrained(folder)


def test_mixin_from_pretrained_would_pass_config_json_keys_to_the_constructor(saved):
    """Why from_pretrained is ours: the mixin's hands config.json's top-level keys to the model."""
    from huggingface_hub import ModelHubMixin

    model, folder = saved
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        ModelHubMixin.from_pretrained.__func__(type(model), str(folder))


def test_interrupted_save_keeps_the_folder_loadable_unlike_the_mixins(saved, monkeypatch):
    """Why save_pretrained is ours: the mixin deletes config.json before writing the weights."""
    from huggingface_hub import ModelHubMixin

    import gan_augment.core.folder as fmt

    model, folder = saved

    def disk_full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fmt, "atomic_save_safetensors", disk_full)
    with pytest.raises(OSError):
        model.save_pretrained(folder)
    assert torch.equal(samples(model), samples(ga.from_pretrained(folder)))  # ours: still loads
    with pytest.raises(OSError):
        ModelHubMixin.save_pretrained(model, folder)
    load_err(folder, "has no config.json")  # the mixin's: the folder no longer loads


def test_resave_replaces_the_card_unlike_the_mixin(saved):
    """Why save_pretrained is ours: the mixin never replaces an existing README.md."""
    from huggingface_hub import ModelHubMixin

    model, folder = saved
    model.save_pretrained(folder, metrics={"fid": 41.5})
    assert "| fid | 41.5 |" in (folder / "README.md").read_text()
    ModelHubMixin.save_pretrained(model, folder, model_card_kwargs={"metrics": {"fid": 12.25}})
    assert "| fid | 41.5 |" in (folder / "README.md").read_text()  # stale card kept
    model.save_pretrained(folder, metrics={"fid": 12.25})
    card = (folder / "README.md").read_text()
    assert "| fid | 12.25 |" in card and "41.5" not in card
    assert json.loads((folder / "config.json").read_text())["metrics"] == {"fid": 12.25}
    assert not list(folder.glob(".*.tmp"))


def test_generate_model_card_is_ours(saved):
    from huggingface_hub import ModelCard

    card = saved[0].generate_model_card(license="mit", metrics={"kid": 0.5})
    assert isinstance(card, ModelCard) and card.data.license == "mit"
    assert card.data.library_name == "gan-augment" and "| kid | 0.5 |" in card.text


def test_save_pretrained_rejects_unknown_card_fields_and_a_config(saved, tmp_path):
    model, _ = saved
    with pytest.raises(ConfigError, match="unknown model card field 'licence'"):
        model.save_pretrained(tmp_path / "x", licence="mit")
    with pytest.raises(ConfigError, match="takes no config"):
        model.save_pretrained(tmp_path / "x", config={"width": 4})
    assert not (tmp_path / "x").exists()


def test_bundled_extractor_loads_by_short_name_from_any_directory(tmp_path, monkeypatch):
    from gan_augment.eval.extractors import load_extractor

    monkeypatch.chdir(tmp_path)  # no ./hub here: found through gan_augment._hub
    ext = load_extractor("pbc-domain-cnn")
    assert ext(torch.rand(2, 3, 64, 64)).shape[0] == 2
