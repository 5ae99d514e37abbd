"""gan-augment: GAN backends for small, imbalanced medical image sets, and one-line adapters that
mix their samples into timm, MONAI and albumentations training pipelines."""

__version__ = "0.1.0"

from gan_augment import (  # noqa: E402
    losses,
    nets,
    testing,  # noqa: E402  (the conformance kit, for third-party backends)
)
from gan_augment.classwise import ClassWise  # noqa: E402
from gan_augment.data import ImageDataset, load_dataset, read_labels  # noqa: E402
from gan_augment.errors import (  # noqa: E402
    BackendNotFoundError,
    CheckpointError,
    ConfigError,
    DataError,
    GanAugmentError,
    ModelLoadError,
    PluginError,
    TrainingDiverged,
)
from gan_augment.hookspecs import hookimpl, hookspec  # noqa: E402
from gan_augment.interface import AdversarialAugmenter, GenerativeAugmenter  # noqa: E402
from gan_augment.registry import backend_info, create, list_backends, register_plugin  # noqa: E402
from gan_augment.trainer import StepContext, TrainConfig, Trainer  # noqa: E402


def from_pretrained(name_or_path, **kwargs):
    """Load a published or saved model: a local folder, a short name from ``hub/``, or a Hub repo id."""
    from gan_augment.hub import from_pretrained as _load

    return _load(name_or_path, **kwargs)


__all__ = [
    "AdversarialAugmenter", "BackendNotFoundError", "ClassWise", "CheckpointError", "ConfigError", "DataError",
    "GanAugmentError", "GenerativeAugmenter", "ImageDataset", "ModelLoadError", "PluginError",
    "StepContext", "TrainConfig", "Trainer", "TrainingDiverged", "backend_info", "create",
    "from_pretrained", "hookimpl", "hookspec", "list_backends", "load_dataset", "losses", "nets",
    "read_labels", "register_plugin", "testing",
]


def __getattr__(name):
    """Lazy exports: adapters load only when used (issue 4)."""
    if name == "SyntheticMix":
        from gan_augment.mix import SyntheticMix

        return SyntheticMix
    if name == "efficacy":
        from gan_augment.eval.efficacy import efficacy

        return efficacy
    raise AttributeError(f"module 'gan_augment' has no attribute {name!r}")
