"""The wheel carries hub/ as the data package gan_augment._hub: built from a copy of the source tree,
installed (not editable) into a folder, and used from a fresh interpreter that cannot see the source
tree or the editable install, with the network off."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import torch
from setuptools import find_packages

import gan_augment as ga
from gan_augment.core.short_names import load_index

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, logging, sys, torch
logging.basicConfig(level=logging.INFO)
import gan_augment as ga
from gan_augment.eval.extractors import load_extractor
from gan_augment.core.short_names import bundled_hub_dir, load_index

out = {"ga": ga.__file__, "hub": str(bundled_hub_dir()), "samples": {}, "modules": {},
       "editable_finder": any("Editable" in repr(f) for f in sys.meta_path)}
for name in sorted(load_index()):
    m = ga.from_pretrained(name)
    m.sample_precision = "fp32"  # as on the test's side: the same maths whatever "auto" finds
    out["samples"][name] = m.sample(4, generator=torch.Generator().manual_seed(0)).double().sum().item()
    out["modules"][name] = sys.modules[type(m).__module__].__file__
out["features"] = list(load_extractor("pbc-domain-cnn")(torch.rand(2, 3, 64, 64)).shape)
print(json.dumps(out))
"""


def test_package_list_in_pyproject_is_complete():
    """pyproject.toml lists packages by hand (package-dir needs it): a new subpackage must be listed."""
    tomllib = pytest.importorskip("tomllib")
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = set(find_packages(str(ROOT), include=["gan_augment", "gan_augment.*"]))
    found |= set(find_packages(str(ROOT / "plugins")))
    assert listed == found | {"gan_augment._hub", "gan_augment._hub.extractors"}


def test_wheel_ships_hub_and_works_offline_from_a_fresh_install(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    for item in ("gan_augment", "plugins", "hub"):
        shutil.copytree(ROOT / item, src / item, ignore=ignore)
    for item in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / item, src / item)
    pip = [sys.executable, "-m", "pip"]
    subprocess.run(pip + ["wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"),
                          str(src)], check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("gan_augment-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    index = load_index(ROOT / "hub")
    expected = {"gan_augment/_hub/__init__.py", "gan_augment/_hub/index.json", "gan_augment/_hub/README.md",
                "gan_augment/_hub/extractors/pbc-domain-cnn/model.safetensors"}
    expected |= {f"gan_augment/_hub/{e['folder']}/{f}" for e in index.values() for f in e["files"]}
    assert expected <= names, sorted(expected - names)
    assert not [n for n in names if "__pycache__" in n or n.startswith(("tests/", "hub/"))]

    target = tmp_path / "site"
    subprocess.run(pip + ["install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    cwd = tmp_path / "elsewhere"  # no source tree, no ./hub beside the process
    cwd.mkdir()
    # -S: no site module, so the editable install's .pth finder never loads; the venv's
    # site-packages comes after the wheel's folder only for torch and the other dependencies.
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{target}:{sysconfig.get_paths()['purelib']}",
           "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "empty_hf_home"), "OMP_NUM_THREADS": "1",
           "PYTHONWARNINGS": "ignore",
           # the same oneDNN kernels on both sides (set when a run emulates an older CPU)
           **{k: os.environ[k] for k in ("ONEDNN_MAX_CPU_ISA",) if k in os.environ}}
    r = subprocess.run([sys.executable, "-S", "-c", CHILD], env=env, cwd=cwd, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["ga"].startswith(str(target)) and out["hub"].startswith(str(target))
    assert not out["editable_finder"]
    assert all(f.startswith(str(target)) for f in out["modules"].values()), out["modules"]
    assert "using the copy bundled with gan-augment at " + str(target) in r.stderr
    assert out["features"][0] == 2
    assert set(out["samples"]) == set(index) and index
    for name, total in out["samples"].items():  # the same bytes as the source tree's copy
        model = ga.from_pretrained(name)
        model.sample_precision = "fp32"  # the subprocess's environment is not this one's
        here = model.sample(4, generator=torch.Generator().manual_seed(0))
        assert total == here.double().sum().item(), name
