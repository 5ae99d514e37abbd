"""The import path ``gan_augment.metrics``: metrics, extractors and the evaluation report, which
live in gan_augment.eval (features, domain_cnn, extractors, metrics, evaluate)."""

from gan_augment.eval import *  # noqa: F403  (the metric functions and the report)
from gan_augment.eval import __all__ as _eval_all
from gan_augment.eval.domain_cnn import train_domain_extractor
from gan_augment.eval.extractors import load_extractor

__all__ = [*_eval_all, "load_extractor", "train_domain_extractor"]
