"""Model cards (README.md with YAML front matter, as the Hub expects) and their sample grids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from gan_augment.core.plots import save_grid

PBC_CITATION = (
    "Acevedo A., Merino A., Alférez S., Molina Á., Boldú L., Rodellar J. A dataset of microscopic "
    "peripheral blood cell images for development of automatic recognition systems. Data in Brief "
    "30 (2020) 105474. doi:10.1016/j.dib.2020.105474. Data: Mendeley Data, V1, "
    "doi:10.17632/snkd93bnjr.1 (CC BY 4.0)."
)


def write_sample_grid(model, path: Path, n: int = 16, seed: int = 0) -> Path:
    g = torch.Generator().manual_seed(seed)
    labels = [i % model.num_classes for i in range(n)] if model.conditional else None
    return save_grid(model.sample(n, labels=labels, generator=g), path, nrow=4 if n <= 16 else 8)


def default_provenance(cfg: dict[str, Any]) -> tuple[str | None, str | None]:
    """(description, citation) for training data gan-augment knows by its file name."""
    source = str((cfg.get("training") or {}).get("data_source", ""))
    if source.startswith("pbc_"):
        return (
            "Training images come from the PBC dataset of normal peripheral blood cells (17,092 "
            "May-Grünwald-Giemsa stained smear images, CellaVision DM96, Hospital Clinic of Barcelona), "
            "resized to the image size above. Licence of the data: CC BY 4.0.",
            PBC_CITATION,
        )
    return None, None


def front_matter(cfg: dict[str, Any], license: str = "cc-by-4.0", datasets: list[str] | None = None,
                 metrics: dict | None = None, tags: list[str] | None = None) -> str:
    """The YAML block the Hub reads, built by huggingface_hub's own ModelCardData."""
    from huggingface_hub import ModelCardData

    all_tags = ["gan-augment", "gan", "medical-imaging", "data-augmentation", cfg["backend"]]
    all_tags += [t for t in (tags or []) if t not in all_tags]
    data = ModelCardData(
        library_name="gan-augment", license=license, tags=all_tags, datasets=datasets or None,
        metrics=sorted(metrics) if metrics else None, pipeline_tag="unconditional-image-generation",
    )
    return f"---\n{data.to_yaml()}\n---\n"


def render_card(cfg: dict[str, Any], license: str = "cc-by-4.0", datasets: list[str] | None = None,
                data_description: str | None = None, citation: str | None = None,
                metrics: dict | None = None, extra: str = "", tags: list[str] | None = None,
                **_: Any) -> str:
    """README.md for a model folder: front matter, samples, use, limits, provenance, metrics."""
    c, h, w = cfg["image_shape"]
    metrics = metrics if metrics is not None else cfg.get("metrics")
    known_desc, known_cite = default_provenance(cfg)
    data_description = data_description or known_desc
    citation = citation or known_cite
    tr = cfg.get("training") or {}
    lines = [
        f"# {cfg['backend']} generator ({h}x{w}, {c} channel{'s' if c > 1 else ''})", "",
        f"A `{cfg['backend']}` generator from gan-augment {cfg.get('library_version', '?')}. Classes: "
        f"{', '.join(cfg['class_names'])}. {'Class-conditional.' if cfg['conditional'] else 'Unconditional.'}", "",
        "![samples](samples.png)", "",
        "## Use", "", "```python", "import gan_augment", "",
        "aug = gan_augment.from_pretrained(\"<this folder or repo id>\")",
        "images = aug.sample(16)  # float32 in [0, 1], shape (16, C, H, W)", "```", "",
        "Loading needs the backend's package installed "
        f"(`{cfg.get('backend_distribution', 'gan-augment')}`); no code is downloaded or run, the "
        "weights are safetensors and loading is strict.", "",
        "## Intended use and limits", "",
        "For research on data augmentation of image classifiers. The images are synthetic: they are "
        "not patient data and must not be used for diagnosis or as evidence about any person. "
        "A generator trained on a few thousand images reproduces that dataset's staining, scanner and "
        "population; it says nothing about others. Check that synthetic images help your own "
        "classifier on held-out real images before relying on them.", "",
        "## Training data", "",
        f"- images: {tr.get('images', 'unknown')} from `{tr.get('data_source', 'unknown')}`",
        f"- class counts: {tr.get('class_counts', 'unknown')}",
        f"- generator steps: {tr.get('steps', 'unknown')}, batch size {tr.get('batch_size', 'unknown')}",
        f"- precision: {tr.get('precision', 'not recorded')}",
        f"- DiffAugment: {tr.get('diffaugment') or 'off'}" if "diffaugment" in tr else "- DiffAugment: not recorded",
        *_balance_lines((tr.get("train_config") or {}).get("class_balance")),
        *_parent_lines(tr.get("parent")),
    ]
    if data_description:
        lines += ["", data_description]
    if citation:
        lines += ["", "### Citation of the training data", "", citation]
    lines += ["", "## Measured metrics", ""]
    if metrics:
        lines += ["| metric | value | floor (real vs real) |", "| --- | --- | --- |"]
        for k, v in metrics.items():
            if isinstance(v, dict):
                lines.append(f"| {k} | {_fmt(v.get('value'))} | {_fmt(v.get('floor'))} |")
            else:
                lines.append(f"| {k} | {_fmt(v)} | |")
    else:
        lines.append("None measured yet (`gan-augment evaluate` measures FID, KID, IS and MS-SSIM).")
    if extra:
        lines += ["", extra]
    return front_matter(cfg, license=license, datasets=datasets, metrics=metrics, tags=tags) + "\n" + "\n".join(lines) + "\n"


def _balance_lines(power: float | None) -> list[str]:
    """The batch draw, when it was not every image once per epoch."""
    if not power:
        return []
    return [f"- class balance {power:g}: images drawn with probability proportional to their class's "
            f"count ** -{power:g}" + (" (every class equally often)" if power == 1 else "")]


def _parent_lines(parent: dict | None) -> list[str]:
    """The card's record of a fine-tuned model's parent (init_from): where it came from and its sha256."""
    if not parent:
        return []
    d = (f"the parent's, first {parent.get('freeze_d', 0)} blocks frozen"
         if parent.get("discriminator") == "parent's" else "new (the parent was a model folder)")
    classes = "; ".join(f"{k}: {v}" for k, v in (parent.get("classes") or {}).items())
    return [f"- started from: `{parent.get('source')}` ({parent.get('backend')} {parent.get('kind')}, "
            f"{parent.get('file')} sha256 `{parent.get('sha256')}`); discriminator: {d}",
            f"- class rows: {classes}"]


def _fmt(v):
    return f"{v:.4g}" if isinstance(v, float) else ("" if v is None else str(v))
