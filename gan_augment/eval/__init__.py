"""Evaluation layer: feature extractors, sample-quality metrics and the efficacy harness."""
