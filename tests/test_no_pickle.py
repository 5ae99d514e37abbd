"""The safety rule, enforced: no pickle anywhere in gan_augment/ and plugins/.

- every ``torch.load(...)`` passes ``weights_only=True``;
- no ``import pickle`` / ``cPickle`` / ``_pickle`` / ``dill`` / ``cloudpickle`` / ``joblib``, and
  no ``pickle.`` attribute use;
- no ``numpy.load(..., allow_pickle=True)``.

Checked on the syntax tree (so a call split over lines is still seen), plus a plain-text grep as
a second net. The checker is itself tested on bad snippets, so this test can fail.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PICKLERS = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}
GREP = re.compile(r"^\s*(import|from)\s+(pickle|cPickle|_pickle|dill|cloudpickle)\b|\bpickle\.\w", re.M)


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _true_kw(call: ast.Call, name: str) -> bool:
    return any(k.arg == name and isinstance(k.value, ast.Constant) and k.value.value is True
               for k in call.keywords)


def violations(source: str, filename: str = "<src>") -> list[str]:
    out = []
    tree = ast.parse(source, filename)
    for node in ast.walk(tree):
        where = f"{filename}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            out += [f"{where}: import {a.name}" for a in node.names if a.name.split(".")[0] in PICKLERS]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PICKLERS:
            out.append(f"{where}: from {node.module} import ...")
        elif isinstance(node, ast.ImportFrom) and node.module == "torch" and any(a.name == "load" for a in node.names):
            out.append(f"{where}: from torch import load (call torch.load(..., weights_only=True) instead)")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name in ("torch.load", "th.load") and not _true_kw(node, "weights_only"):
                out.append(f"{where}: {name}() without weights_only=True")
            if name in ("np.load", "numpy.load") and _true_kw(node, "allow_pickle"):
                out.append(f"{where}: {name}(allow_pickle=True)")
            if name.startswith("pickle."):
                out.append(f"{where}: {name}()")
    out += [f"{filename}: grep: {m.group(0).strip()}" for m in GREP.finditer(source)]
    return out


def sources():
    files = sorted((ROOT / "gan_augment").rglob("*.py")) + sorted((ROOT / "plugins").rglob("*.py"))
    return [f for f in files if "_hub" not in f.parts]


def test_there_is_code_to_check():
    names = {f.name for f in sources()}
    assert {"format.py", "folder.py", "short_names.py", "serialization.py", "checkpoint.py"} <= names


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_pickle_in_package(path):
    assert violations(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT))) == []


@pytest.mark.parametrize("bad", [
    "import pickle",
    "import pickle as p",
    "from pickle import loads",
    "import dill",
    "import joblib\njoblib.load('x')",
    "import torch\ntorch.load('x')",
    "import torch\ntorch.load('x', weights_only=False)",
    "import torch\ntorch.load(\n    'x',\n    map_location='cpu',\n)",
    "from torch import load",
    "import numpy as np\nnp.load('x.npz', allow_pickle=True)",
    "x = pickle.dumps(1)",
])
def test_checker_catches(bad):
    assert violations(bad)


@pytest.mark.parametrize("good", [
    "import torch\ntorch.load('x', weights_only=True, map_location='cpu')",
    "import numpy as np\nnp.load('x.npz')",
    "from safetensors.torch import load_file",
    "# we never use pickle here\ns = 'no pickle'",
])
def test_checker_passes(good):
    assert violations(good) == []
