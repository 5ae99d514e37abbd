"""Generators the harness compares: loaded once, identified by the sha256 of their weights.

A model folder or short name is hashed as its ``model.safetensors`` file; an in-memory augmenter
as the safetensors serialisation of its ``state_dict()`` (same tensors, same bytes).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gan_augment.core.contract import GenerativeAugmenter
from gan_augment.core.errors import ConfigError
from gan_augment.core.folder import load
from gan_augment.core.format import WEIGHTS_NAME
from gan_augment.core.serialization import sha256_file


def state_sha256(state: dict[str, torch.Tensor]) -> str:
    from safetensors.torch import save

    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    return hashlib.sha256(save(tensors)).hexdigest()


@dataclass
class GeneratorRef:
    label: str
    augmenter: GenerativeAugmenter
    weights_sha256: str
    source: str
    weights_file: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)


def _provenance(aug: GenerativeAugmenter) -> dict[str, Any]:
    import json

    summary = json.loads(json.dumps(getattr(aug, "training_summary", None) or {}, default=str))
    return {"backend": aug.name, "config": aug.get_config(), "class_names": aug.class_names,
            "training_summary": summary, "training_class_counts": summary.get("class_counts"),
            "training_steps": summary.get("steps")}


def resolve_generator(spec: Any, index: int) -> GeneratorRef:
    """A GenerativeAugmenter, a model folder, a short name or a Hub repo id -> GeneratorRef."""
    if isinstance(spec, GenerativeAugmenter):
        ref = GeneratorRef(f"{spec.name}#{index}", spec, state_sha256(spec.state_dict()),
                           getattr(spec, "name_or_path", None) or "in-memory augmenter")
    elif isinstance(spec, (str, Path)):
        loaded = load(spec)  # one resolve, one config read, the weights hashed once
        weights = loaded.folder / WEIGHTS_NAME
        digest = loaded.digests.get(WEIGHTS_NAME) or sha256_file(weights)
        ref = GeneratorRef(str(spec), loaded.model, digest, str(spec), str(weights))
    else:
        raise ConfigError(f"a generator must be a GenerativeAugmenter, a model folder or a short name; "
                             f"got {type(spec).__name__}.")
    ref.provenance = {"label": ref.label, "source": ref.source, "weights_sha256": ref.weights_sha256,
                      "weights_file": ref.weights_file, **_provenance(ref.augmenter)}
    return ref


def resolve_generators(specs: Any) -> list[GeneratorRef]:
    if specs is None or (isinstance(specs, (list, tuple)) and not specs):
        raise ConfigError("give at least one generator: generators=[augmenter, 'model-folder' or "
                             "'short-name'] (CLI: --generator NAME).")
    if isinstance(specs, (str, Path, GenerativeAugmenter)):
        specs = [specs]
    refs = [resolve_generator(s, i) for i, s in enumerate(specs)]
    labels = [r.label for r in refs]
    for i, r in enumerate(refs):
        if labels.count(r.label) > 1:
            r.label = f"{r.label}#{i}"
            r.provenance["label"] = r.label
    return refs
