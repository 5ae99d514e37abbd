"""gan-augment: GAN backends for small, imbalanced medical image sets, and one-line adapters that
mix their samples into timm, MONAI and albumentations training pipelines.

This module is a lazy facade (PEP 562): ``import gan_augment`` loads nothing heavy, and each public
name loads its own subpackage on first use. The package's modules (core, training, gan, hub, mix,
eval, the adapters and testing; not the cli, which is the user's side) never import this facade,
so no import can close a circle; pyproject.toml's import-linter contract checks it and
docs/architecture.md draws the picture.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gan_augment.core.version import __version__

#: public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # the contract, errors and plugin API
    "GenerativeAugmenter": "gan_augment.core.contract",
    "GanAugmentError": "gan_augment.core.errors",
    "BackendNotFoundError": "gan_augment.core.errors",
    "CheckpointError": "gan_augment.core.errors",
    "ConfigError": "gan_augment.core.errors",
    "DataError": "gan_augment.core.errors",
    "ModelLoadError": "gan_augment.core.errors",
    "PluginError": "gan_augment.core.errors",
    "WriteError": "gan_augment.core.errors",
    "TrainingDiverged": "gan_augment.core.errors",
    "hookimpl": "gan_augment.core.hookspecs",
    "hookspec": "gan_augment.core.hookspecs",
    "create": "gan_augment.core.registry",
    "list_backends": "gan_augment.core.registry",
    "backend_info": "gan_augment.core.registry",
    "register_plugin": "gan_augment.core.registry",
    # data
    "BASE_DEFAULTS": "gan_augment.core.contract",
    "ImageDataset": "gan_augment.core.data",
    "as_dataset": "gan_augment.core.data",
    "load_dataset": "gan_augment.core.data",
    "read_labels": "gan_augment.core.data",
    # training and GAN building blocks
    "TrainConfig": "gan_augment.training.config",
    "StepContext": "gan_augment.training.config",
    "Trainer": "gan_augment.training.loop",
    "CHECKPOINT_NAME": "gan_augment.training.checkpoint",
    "TrainingInterrupted": "gan_augment.training.interrupts",
    "AdversarialAugmenter": "gan_augment.training.adversarial",
    "PrepareContext": "gan_augment.training.stage",
    # hub, mixer
    "from_pretrained": "gan_augment.core.folder",
    "SyntheticMix": "gan_augment.mix.dataset",
    # judging
    "efficacy": "gan_augment.eval.efficacy",
}

#: public submodules reachable as attributes (``ga.nets.ConvGenerator``)
_MODULES: dict[str, str] = {
    "nets": "gan_augment.gan.nets",
    "losses": "gan_augment.gan.losses",
    "testing": "gan_augment.testing",
    "metrics": "gan_augment.metrics",
    "filters": "gan_augment.filters",
}

#: backends that live in plugins, reachable by their class name through the registry
_BACKEND_CLASSES: dict[str, str] = {"ClassWise": "classwise"}

__all__ = sorted([*_EXPORTS, *_MODULES, *_BACKEND_CLASSES, "__version__"])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _MODULES:
        value = importlib.import_module(_MODULES[name])
    elif name in _BACKEND_CLASSES:  # through the entry-point group: the core names no backend module
        value = importlib.import_module("gan_augment.core.registry").backend_info(_BACKEND_CLASSES[name]).cls
    else:
        raise AttributeError(f"module 'gan_augment' has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # static analysers and IDEs see the real names
    from gan_augment.core.contract import BASE_DEFAULTS, GenerativeAugmenter
    from gan_augment.core.data import ImageDataset, as_dataset, load_dataset, read_labels
    from gan_augment.core.errors import (
        BackendNotFoundError,
        CheckpointError,
        ConfigError,
        DataError,
        GanAugmentError,
        ModelLoadError,
        PluginError,
        TrainingDiverged,
        WriteError,
    )
    from gan_augment.core.folder import from_pretrained
    from gan_augment.core.hookspecs import hookimpl, hookspec
    from gan_augment.core.registry import backend_info, create, list_backends, register_plugin
    from gan_augment.eval.efficacy import efficacy
    from gan_augment.mix.dataset import SyntheticMix
    from gan_augment.training.adversarial import AdversarialAugmenter
    from gan_augment.training.checkpoint import CHECKPOINT_NAME
    from gan_augment.training.config import StepContext, TrainConfig
    from gan_augment.training.interrupts import TrainingInterrupted
    from gan_augment.training.loop import Trainer
    from gan_augment.training.stage import PrepareContext
