"""Model cards (README.md with YAML front matter, as the Hub expects) and their sample grids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

PBC_CITATION = (
    "Acevedo A., Merino A., Alférez S., Molina Á., Boldú L., Rodellar J. A dataset of microscopic "
    "peripheral blood cell images for development of automatic recognition systems. Data in Brief "
    "30 (2020) 105474. doi:10.1016/j.dib.2020.105474. Data: Mendeley Data, V1, "
    "doi:10.17632/snkd93bnjr.1 (CC BY 4.0)."
)


def write_sample_grid(model, path: Path, n: int = 16, seed: int = 0) -> Path:
    from gan_augment.plots import save_grid

    g = torch.Generator().manual_seed(seed)
    labels = [i % model.num_classes for i in range(n)] if model.conditional else None
    return save_grid(model.sample(n, labels=labels, generator=g), path, nrow=4 if n <= 16 else 8)


def render_card(cfg: dict[str, Any], license: str = "cc-by-4.0", datasets: list[str] | None = None,
                data_description: str | None = None, citation: str | None = None,
                metrics: dict | None = None, extra: str = "", **_: Any) -> str:
    c, h, w = cfg["image_shape"]
    tags = ["gan-augment", "gan", "medical-imaging", "data-augmentation", cfg["backend"]]
    front = ["---", "library_name: gan-augment", f"license: {license}", "tags:"]
    front += [f"- {t}" for t in tags]
    if datasets:
        front += ["datasets:"] + [f"- {d}" for d in datasets]
    if metrics:
        front += ["metrics:"] + [f"- {k}" for k in sorted(metrics)]
    front.append("---")
    tr = cfg.get("training") or {}
    lines = [
        f"# {cfg['backend']} generator ({h}x{w}, {c} channel{'s' if c > 1 else ''})", "",
        f"A `{cfg['backend']}` generator from gan-augment {cfg['library_version']}. Classes: "
        f"{', '.join(cfg['class_names'])}. {'Class-conditional.' if cfg['conditional'] else 'Unconditional.'}", "",
        "![samples](samples.png)", "",
        "## Use", "", "```python", "import gan_augment", "",
        "aug = gan_augment.from_pretrained(\"<this folder or repo id>\")",
        "images = aug.sample(16)  # float32 in [0, 1], shape (16, C, H, W)", "```", "",
        "## Intended use and limits", "",
        "For research on data augmentation of image classifiers. The images are synthetic: they are "
        "not patient data and must not be used for diagnosis or as evidence about any person. "
        "A generator trained on a few thousand images reproduces that dataset's staining, scanner and "
        "population; it says nothing about others.", "",
        "## Training", "",
        f"- images: {tr.get('images', 'unknown')} from `{tr.get('data_source', 'unknown')}`",
        f"- class counts: {tr.get('class_counts', 'unknown')}",
        f"- generator steps: {tr.get('steps', 'unknown')}, batch size {tr.get('batch_size', 'unknown')}",
    ]
    if data_description:
        lines += ["", data_description]
    if citation:
        lines += ["", "### Training data citation", "", citation]
    if metrics:
        lines += ["", "## Measured metrics", "", "| metric | value | floor (real vs real) |", "| --- | --- | --- |"]
        for k, v in metrics.items():
            if isinstance(v, dict):
                lines.append(f"| {k} | {_fmt(v.get('value'))} | {_fmt(v.get('floor'))} |")
            else:
                lines.append(f"| {k} | {_fmt(v)} | |")
    if extra:
        lines += ["", extra]
    return "\n".join(front + [""] + lines) + "\n"


def _fmt(v):
    return f"{v:.4g}" if isinstance(v, float) else ("" if v is None else str(v))
