"""`gan-augment backends` answers from an index when the installed plugins are unchanged, and
loads them for real (and rewrites the index) when anything about them changed."""

import importlib.metadata as md
import os
import subprocess
import sys

from gan_augment.cli import main
from gan_augment.core import backend_index

LIST_AND_SAY_IF_TORCH = ("import sys; from gan_augment.cli import main; main(['backends']); "
                         "print('torch imported:', 'torch' in sys.modules)")


def run_listing(cache):
    env = {**os.environ, "GAN_AUGMENT_CACHE": str(cache)}
    res = subprocess.run([sys.executable, "-c", LIST_AND_SAY_IF_TORCH], capture_output=True, text=True,
                         env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_second_listing_comes_from_the_index_without_torch(tmp_path):
    first = run_listing(tmp_path)
    assert "torch imported: True" in first
    assert (tmp_path / "backends.json").exists()
    second = run_listing(tmp_path)
    assert "torch imported: False" in second
    assert first.replace("True", "") == second.replace("False", "")  # the same table
    for name in ("dcgan", "wgan-gp", "cwgan-gp", "bagan", "bagan-gp", "classwise"):
        assert f"\n{name} " in "\n" + second


def test_a_changed_plugin_set_invalidates_the_index(tmp_path, monkeypatch):
    path = tmp_path / "backends.json"
    backend_index.write_rows([["x", "1", "d", "no"]], path)
    assert backend_index.read_rows(path) == [["x", "1", "d", "no"]]
    real = md.entry_points
    extra = md.EntryPoint("newgan", "some_new_plugin", backend_index.ENTRY_POINT_GROUP)

    def with_one_more(**kw):
        found = list(real(**kw))
        return found + [extra] if kw.get("group") == backend_index.ENTRY_POINT_GROUP else found

    monkeypatch.setattr(md, "entry_points", with_one_more)
    assert backend_index.read_rows(path) is None


def test_an_edited_plugin_module_invalidates_the_index(tmp_path, monkeypatch):
    path = tmp_path / "backends.json"
    backend_index.write_rows([["x", "1", "d", "no"]], path)
    monkeypatch.setattr(backend_index, "_module_mtime", lambda target: 1.0)  # every file "edited"
    assert backend_index.read_rows(path) is None


def test_a_corrupt_index_is_ignored_and_replaced(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GAN_AUGMENT_CACHE", str(tmp_path))
    (tmp_path / "backends.json").write_text("{not json")
    assert main(["backends"]) == 0
    assert "wgan-gp" in capsys.readouterr().out
    assert backend_index.read_rows() is not None
