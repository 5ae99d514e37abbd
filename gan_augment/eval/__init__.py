"""Layer 5: judging a generator. Feature extractors (features, domain_cnn, extractors), metrics on
features and pixels (metrics), and the report that puts each metric beside its real-data floor
(evaluate). ``gan_augment.metrics`` is this package."""

from gan_augment.eval.evaluate import evaluate, summary_table
from gan_augment.eval.metrics import (
    density_coverage,
    fid_from_features,
    inception_score_from_logits,
    kid_from_features,
    memorisation_check,
    ms_ssim_diversity,
    ms_ssim_pairs,
    ms_ssim_settings,
    nearest_distances,
    precision_recall,
)

__all__ = [
    "density_coverage", "evaluate", "fid_from_features", "inception_score_from_logits",
    "kid_from_features", "memorisation_check", "ms_ssim_diversity", "ms_ssim_pairs",
    "ms_ssim_settings", "nearest_distances", "precision_recall", "summary_table",
]
