"""docs/architecture.md names every module of the package, so a new module cannot go unmentioned."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_architecture_page_names_every_module():
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    unnamed = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "gan_augment").rglob("*.py"))
               if p.name != "__init__.py" and f"`{p.name}`" not in page]
    packages = [str(p.parent.relative_to(ROOT)) for p in sorted((ROOT / "gan_augment").rglob("__init__.py"))
                if p.parent != ROOT / "gan_augment" and f"**{p.parent.name}**" not in page
                and f"`{p.parent.name}/`" not in page]
    assert not unnamed and not packages, f"docs/architecture.md does not name {unnamed + packages}"
