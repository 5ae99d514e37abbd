"""The import path ``gan_augment.metrics``: metrics, extractors and the evaluation report, which
live in gan_augment.eval (features, domain_cnn, extractors, metrics, evaluate)."""

from gan_augment.eval import (
    density_coverage,
    evaluate,
    fid_from_features,
    inception_score_from_logits,
    kid_from_features,
    memorisation_check,
    ms_ssim_diversity,
    ms_ssim_pairs,
    ms_ssim_settings,
    nearest_distances,
    precision_recall,
    summary_table,
)
from gan_augment.eval.domain_cnn import train_domain_extractor
from gan_augment.eval.extractors import load_extractor

__all__ = [
    "density_coverage", "evaluate", "fid_from_features", "inception_score_from_logits",
    "kid_from_features", "load_extractor", "memorisation_check", "ms_ssim_diversity",
    "ms_ssim_pairs", "ms_ssim_settings", "nearest_distances", "precision_recall", "summary_table",
    "train_domain_extractor",
]
