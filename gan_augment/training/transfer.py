"""Start a run from a trained parent (``init_from``) and freeze the discriminator's first blocks
(``freeze_d``, FreezeD: Mo et al. 2020).

Why: with 19 images of one class among 2,500 others a conditional GAN gives that class almost
no gradient. A parent trained on plenty of data (all classes, or the common ones) already draws
blood cells; fine-tuning it moves what it knows to the rare class, and freezing the
discriminator's low-level blocks keeps the few rare images from being memorised by them.

The parent is a training run folder (``checkpoint.safetensors``: generator and discriminator)
or a model folder / Hub repo id (``config.json`` + ``model.safetensors``: the generator only,
the EMA weights when the run used EMA). Its backend must be the model's, or one's class must
derive from the other's (``sngan-uncond`` and ``sngan``), and its networks the same shape except
for the class rows. Class names may differ: a class the parent knows keeps its row; a new class
gets the parent's rows averaged (``new_class_init="mean"``) or the row of the parent class
whose projection scores the new class's training images highest (``"nearest"``, needs the
parent's discriminator); ``"auto"`` picks nearest when it can.

The hook a backend implements (the core never names a backend):

* ``class_row_keys(net) -> list[str]``: the state-dict keys of ``net`` ("generator" or
  "discriminator") whose first dimension is indexed by class (embeddings, conditional-BN rows).
* ``discriminator_blocks() -> list[nn.Module]``: the discriminator's blocks from the image up;
  ``freeze_d=k`` freezes the first k. Only needed for ``freeze_d``.

The trainer calls :func:`start_from_parent` once, after building the networks and before the
optimisers and the EMA copy; the parent it returns goes into the training summary and the card.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gan_augment.core.errors import ConfigError, ModelLoadError
from gan_augment.core.format import CONFIG_NAME, WEIGHTS_NAME, read_config
from gan_augment.core.serialization import load_strict, read_safetensors, sha256_file
from gan_augment.training.checkpoint import CHECKPOINT_NAME, read_trainer_state

NEW_CLASS_INIT = ("auto", "nearest", "mean")
#: most training images of a new class the parent's discriminator scores for "nearest"
NEAREST_IMAGES = 64


@dataclass
class Parent:
    """A trained parent read from disk: where it came from, its sha256 and its tensors."""

    source: str
    kind: str  # "run" (generator and discriminator) or "model" (generator only)
    file: Path
    sha256: str
    backend: str
    config: dict[str, Any]
    generator: dict[str, torch.Tensor]
    discriminator: dict[str, torch.Tensor] | None

    @property
    def class_names(self) -> list[str]:
        return list(self.config.get("class_names") or ["all"])  # unconditional: one class


def read_parent(source: str | os.PathLike) -> Parent:
    """The parent named by a run folder, a model folder, a short name or a Hub repo id."""
    from gan_augment.core.folder import find  # huggingface_hub: only when a run has a parent

    folder = find(source).folder
    if (folder / CHECKPOINT_NAME).is_file():
        path = folder / CHECKPOINT_NAME
        state, tensors = read_trainer_state(path), read_safetensors(path)

        def part(prefix: str) -> dict[str, torch.Tensor]:
            return {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}

        return Parent(str(source), "run", path, sha256_file(path), state["backend"], state["model_config"],
                      part("G"), part("D"))
    if (folder / CONFIG_NAME).is_file():
        cfg, path = read_config(folder / CONFIG_NAME), folder / WEIGHTS_NAME
        if not path.is_file():
            raise ModelLoadError(f"init_from {source}: {folder} has {CONFIG_NAME} but no {WEIGHTS_NAME}; "
                                 "copy the weights beside it or pass another parent.")
        digest = sha256_file(path)
        if cfg.get("weights_sha256") not in (None, digest):
            raise ModelLoadError(f"init_from {source}: {path} does not match the sha256 in {CONFIG_NAME}; "
                                 "it is corrupted or was replaced: copy or download it again.")
        return Parent(str(source), "model", path, digest, cfg["backend"], cfg["config"], read_safetensors(path), None)
    raise ConfigError(f"init_from {source}: {folder} holds neither {CHECKPOINT_NAME} (a training run) nor "
                      f"{CONFIG_NAME} (a model folder); pass a `gan-augment train --out` folder or a "
                      "save_pretrained folder.")


def check_related(model: Any, parent: Parent) -> None:
    """The parent must be the model's backend, or one's class must derive from the other's."""
    from gan_augment.core.registry import backend_info

    if parent.backend == model.name:
        return
    try:
        other = backend_info(parent.backend).cls
    except Exception:
        other = None
    if other is None or not (issubclass(type(model), other) or issubclass(other, type(model))):
        raise ConfigError(f"init_from {parent.source} is a {parent.backend!r} model and this run trains "
                          f"{model.name!r}; transfer needs the same networks: train {parent.backend} or pass a "
                          f"{model.name} parent.")


def _hook(model: Any, name: str, what: str):
    fn = getattr(model, name, None)
    if fn is None:
        raise ConfigError(f"backend {model.name!r} does not support {what}: it must implement {name}() "
                          "(see gan_augment/training/transfer.py); sngan does.")
    return fn


def nearest_parent_classes(parent_model: Any, images: torch.Tensor) -> torch.Tensor:
    """Per parent class, the mean score the parent's discriminator gives ``images`` (uint8 N,C,H,W)
    under that class's label: the projection term is the only part that changes with the label,
    so the highest mean is the parent class these images look most like to it."""
    D = parent_model.discriminator.eval()
    x = images[:NEAREST_IMAGES].float().div(127.5).sub(1.0)
    with torch.no_grad():
        scores = [D(x, torch.full((len(x),), k, dtype=torch.long)).float().mean()
                  for k in range(parent_model.num_classes)]
    return torch.stack(scores)


def row_plan(names: list[str], parent: Parent, mode: str, nearest=None) -> tuple[list[list[int]], dict[str, str]]:
    """For each of ``names``, the parent rows its class rows start from, and how (for the card).
    ``nearest(j)`` returns the parent scores of class j's images, for mode "nearest"."""
    if mode not in NEW_CLASS_INIT:
        raise ConfigError(f"new_class_init must be one of {', '.join(NEW_CLASS_INIT)}, got {mode!r}.")
    pnames = parent.class_names
    rows, how = [], {}
    for j, name in enumerate(names):
        if name in pnames:
            rows.append([pnames.index(name)])
            how[name] = f"parent class {name}"
        elif len(pnames) == 1:  # an unconditional parent: its one row for every class
            rows.append([0])
            how[name] = f"the parent's only class ({pnames[0]})"
        elif mode == "mean" or (mode == "auto" and nearest is None):
            rows.append(list(range(len(pnames))))
            how[name] = "mean of the parent's classes"
        else:
            if nearest is None:
                raise ConfigError(f"new_class_init='nearest' needs the parent's discriminator, and "
                                  f"{parent.source} is a model folder (generator only): pass a training run "
                                  "folder, or new_class_init='mean'.")
            k = int(torch.argmax(nearest(j)))
            rows.append([k])
            how[name] = f"nearest parent class {pnames[k]}"
    return rows, how


def remap_state(module: nn.Module, parent_state: dict[str, torch.Tensor], row_keys: list[str],
                rows: list[list[int]], what: str, hint: str) -> dict[str, torch.Tensor]:
    """``module``'s state with every tensor from the parent: class rows rebuilt from ``rows``
    (each new row the mean of its parent rows), everything else copied; shapes must agree."""
    own = module.state_dict()
    extra = sorted(set(parent_state) - set(own))
    missing = sorted(set(own) - set(parent_state))
    if extra or missing:
        raise ConfigError(f"init_from: the parent's {what} has other layers ({(missing or extra)[0]!r} "
                          f"{'missing' if missing else 'unexpected'}); {hint}")
    out = {}
    for key, mine in own.items():
        theirs = parent_state[key]
        if key in row_keys:
            if theirs.shape[1:] != mine.shape[1:]:
                raise ConfigError(f"init_from: {what} {key} rows are {tuple(theirs.shape[1:])} in the parent "
                                  f"and {tuple(mine.shape[1:])} here; {hint}")
            if len(theirs) == 1:  # a class-free layer of the parent (one row) seeds every class
                theirs = theirs.expand(len(rows), *theirs.shape[1:]).clone()
            else:
                theirs = torch.stack([theirs[r].float().mean(0).to(theirs.dtype) for r in rows])
        elif theirs.shape != mine.shape:
            raise ConfigError(f"init_from: {what} {key} is {tuple(theirs.shape)} in the parent and "
                              f"{tuple(mine.shape)} here; {hint}")
        out[key] = theirs.to(mine.device, mine.dtype)
    return out


def _drop_grad(p: torch.Tensor) -> None:
    p.grad = None  # no gradient: Adam skips the parameter, so it keeps its value exactly


def freeze_discriminator(model: Any, k: int) -> int:
    """Freeze the first ``k`` discriminator blocks: their gradients are dropped as they arrive,
    so no optimiser step moves them. Returns how many parameter tensors were frozen."""
    D = model.discriminator
    for handle in getattr(D, "_freeze_d_handles", []):  # a second fit() re-decides
        handle.remove()
    D._freeze_d_handles = []
    if not k:
        return 0
    blocks = _hook(model, "discriminator_blocks", "freeze_d")()
    if not isinstance(k, int) or not 0 <= k <= len(blocks):
        raise ConfigError(f"freeze_d={k!r}, but the {model.name} discriminator has {len(blocks)} blocks at "
                          f"{model.config['image_size']} px; pass 0..{len(blocks)}.")
    params = [p for b in blocks[:k] for p in b.parameters()]
    D._freeze_d_handles = [p.register_post_accumulate_grad_hook(_drop_grad) for p in params]
    return len(params)


def _recorded_parent(trainer: Any) -> dict[str, Any] | None:
    """The parent a resumed run recorded in its config.json (what was loaded, even if the parent
    has since changed or gone), or None."""
    import json

    out = getattr(trainer, "out", None)
    path = Path(out) / CONFIG_NAME if out is not None else None
    if path is None or not path.is_file():
        return None
    try:
        return (json.loads(path.read_text()).get("training") or {}).get("parent")
    except ValueError:
        return None


def start_from_parent(trainer: Any) -> dict[str, Any] | None:
    """The trainer's one call: load the parent into the model's fresh networks (not when resuming:
    the run's own checkpoint then holds the weights), freeze the first ``freeze_d`` blocks, and
    return what the card records about the parent (None without ``init_from``)."""
    cfg, model = trainer.cfg, trainer.model
    if cfg.init_from is None:
        if cfg.freeze_d:
            raise ConfigError("freeze_d freezes blocks of a parent's discriminator: pass init_from=<a training "
                              "run folder> too (--init-from), or freeze_d=0.")
        freeze_discriminator(model, 0)
        return None
    if cfg.resume:  # the weights come from the run's own checkpoint; the parent was recorded beside it
        recorded = _recorded_parent(trainer)
        if recorded is not None:
            freeze_discriminator(model, cfg.freeze_d)
            return {**recorded, "freeze_d": cfg.freeze_d}
    parent = read_parent(cfg.init_from)
    check_related(model, parent)
    if cfg.freeze_d and parent.discriminator is None:
        raise ConfigError(f"freeze_d needs the parent's discriminator, and {parent.source} is a model folder "
                          "(generator only): pass its training run folder (with checkpoint.safetensors).")
    row_keys = _hook(model, "class_row_keys", "init_from")
    nearest = None
    if parent.discriminator is not None and cfg.new_class_init != "mean":
        from gan_augment.core.registry import create

        parent_model = create(parent.backend, **parent.config)
        load_strict(parent_model.discriminator, parent.discriminator, what="parent discriminator")

        def nearest(j: int) -> torch.Tensor:
            imgs = trainer.images[trainer.labels == j] if model.conditional else trainer.images
            if len(imgs) == 0:
                raise ConfigError(f"new_class_init='nearest': class {model.class_names[j]!r} has no training "
                                  "images to compare; use new_class_init='mean'.")
            return nearest_parent_classes(parent_model, imgs)

    rows, how = row_plan(model.class_names, parent, cfg.new_class_init, nearest)
    differs = {k: (v, model.config.get(k)) for k, v in parent.config.items()
               if k != "class_names" and model.config.get(k) != v}
    hint = ("the networks must match: " + ", ".join(f"{k} {a!r} in the parent, {b!r} here" for k, (a, b) in differs.items())
            if differs else "the parent was trained by another version of the backend")
    if not cfg.resume:
        G, D = model.generator, model.discriminator
        G.load_state_dict(remap_state(G, parent.generator, row_keys("generator"), rows, "generator", hint))
        if parent.discriminator is not None:
            D.load_state_dict(remap_state(D, parent.discriminator, row_keys("discriminator"), rows,
                                          "discriminator", hint))
    freeze_discriminator(model, cfg.freeze_d)
    return {"source": parent.source, "kind": parent.kind, "file": parent.file.name, "sha256": parent.sha256,
            "backend": parent.backend, "classes": how, "freeze_d": cfg.freeze_d,
            "discriminator": "parent's" if parent.discriminator is not None else "new"}
