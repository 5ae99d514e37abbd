"""No statement follows a return, raise, continue or break in the same block. Ruff 0.17 has no
rule for unreachable code (pylint's W0101 is not among its rules), so this is the check."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("gan_augment", "plugins", "examples", "benchmarks", "tests")
ENDS_A_BLOCK = (ast.Return, ast.Raise, ast.Continue, ast.Break)


def unreachable(source: str, filename: str = "<string>") -> list[int]:
    """Line numbers of statements that follow a return/raise/continue/break in their block."""
    lines = []
    for node in ast.walk(ast.parse(source, filename)):
        for name in ("body", "orelse", "finalbody"):
            block = getattr(node, name, None)
            if not isinstance(block, list):
                continue
            for before, after in zip(block, block[1:]):
                if isinstance(before, ENDS_A_BLOCK):
                    lines.append(after.lineno)
                    break
    return sorted(lines)


def test_the_check_finds_a_planted_dead_statement():
    planted = "def f(x):\n    return x\n    y = x * 2\n    return y\n\nfor i in []:\n    continue\n    print(i)\n"
    assert unreachable(planted) == [3, 8]
    assert unreachable("def f(x):\n    if x:\n        return 1\n    return 2\n") == []


def test_no_source_file_has_unreachable_statements():
    found = []
    for top in SOURCES:
        for path in sorted((ROOT / top).rglob("*.py")):
            if ".venv" in path.parts or "site-packages" in path.parts:
                continue
            for line in unreachable(path.read_text(encoding="utf-8"), str(path)):
                found.append(f"{path.relative_to(ROOT)}:{line}")
    assert not found, "statements after a return/raise/continue/break: " + ", ".join(found)
