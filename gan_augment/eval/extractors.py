"""Find a feature extractor by name or path: a bundled domain CNN, a local folder, or Inception."""

from __future__ import annotations

from pathlib import Path

from gan_augment.core.devices import check_device
from gan_augment.core.errors import ModelLoadError
from gan_augment.core.short_names import bundled_hub_dir, hub_dir
from gan_augment.eval.domain_cnn import DomainCNN
from gan_augment.eval.features import (
    CONFIG_NAME,
    OFFLINE_HINT,
    FeatureExtractor,
    InceptionExtractor,
)


def extractor_search_dirs() -> list[Path]:
    """Folders holding named extractors: ./hub/extractors, $GAN_AUGMENT_HUB_DIR/extractors, then the
    package's own (gan_augment._hub: the repository's hub/ when editable, its copy in a wheel)."""
    dirs = [Path.cwd() / "hub" / "extractors", hub_dir() / "extractors", bundled_hub_dir() / "extractors"]
    return list(dict.fromkeys(d for d in dirs))


def load_extractor(path_or_name: str | Path | FeatureExtractor, device: str | None = None) -> FeatureExtractor:
    """``inception`` / ``inception:PATH`` for the FID Inception, a folder, or a short name
    (e.g. ``pbc-domain-cnn``) from hub/extractors."""
    if isinstance(path_or_name, FeatureExtractor):
        ext = path_or_name
    else:
        spec = str(path_or_name)
        if spec == "inception" or spec.startswith("inception:"):
            ext = InceptionExtractor(spec.split(":", 1)[1] if ":" in spec else None)
        else:
            p = Path(spec).expanduser()
            if not p.is_dir():
                hits = [d / spec for d in extractor_search_dirs() if (d / spec / CONFIG_NAME).is_file()]
                if not hits:
                    known = sorted({c.name for d in extractor_search_dirs() if d.is_dir()
                                    for c in d.iterdir() if (c / CONFIG_NAME).is_file()})
                    raise ModelLoadError(
                        f"feature extractor {spec!r} is neither a folder nor a known name "
                        f"(known: {', '.join(known) or 'none'}; or 'inception'). {OFFLINE_HINT}"
                    )
                p = hits[0]
            ext = DomainCNN.load(p)
    if device is not None:
        ext.to(check_device(device))
    return ext.eval()
