"""The facade contract of pyproject.toml checks something: lint-imports passes on a copy of the
package and fails once a module inside it imports the facade."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
FACADE = "Nothing inside the package imports the facade (gan_augment/__init__.py)"


def _facade_contract() -> dict:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    (contract,) = [c for c in contracts if c["name"] == FACADE]
    return contract


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return '"' + str(value).replace('"', '\\"') + '"'


def _lint_copy(tmp: Path, plant: str | None) -> subprocess.CompletedProcess:
    """lint-imports with the facade contract alone, on a copy of gan_augment/ (plus ``plant``)."""
    shutil.copytree(ROOT / "gan_augment", tmp / "gan_augment",
                    ignore=shutil.ignore_patterns("__pycache__"))
    if plant:
        target = tmp / "gan_augment" / plant
        target.write_text(target.read_text() + "\nimport gan_augment  # planted violation\n")
    body = "\n".join(f"{k} = {_toml(v)}" for k, v in _facade_contract().items())
    (tmp / "pyproject.toml").write_text(
        '[tool.importlinter]\nroot_packages = ["gan_augment"]\n\n[[tool.importlinter.contracts]]\n' + body + "\n")
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=tmp, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp)}, timeout=120)


def test_the_facade_contract_keeps_on_the_package_as_it_is(tmp_path):
    run = _lint_copy(tmp_path, None)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 kept, 0 broken" in run.stdout


@pytest.mark.parametrize("plant", ["core/naming.py", "hub/index.py", "testing/toy.py"])
def test_the_facade_contract_fails_on_a_planted_import(tmp_path, plant):
    run = _lint_copy(tmp_path, plant)
    assert run.returncode != 0
    module = "gan_augment." + plant.removesuffix(".py").replace("/", ".")
    assert "BROKEN" in run.stdout and f"{module} -> gan_augment" in run.stdout, run.stdout


def test_the_package_holds_no_dodged_facade_import():
    """``__import__("gan_augment")`` or ``import_module("gan_augment")`` would hide from import-linter."""
    for path in (ROOT / "gan_augment").rglob("*.py"):
        text = path.read_text()
        for dodge in ('__import__("gan_augment")', "import_module(\"gan_augment\")", "__import__('gan_augment')"):
            assert dodge not in text, f"{path.relative_to(ROOT)} imports the facade as {dodge}"
