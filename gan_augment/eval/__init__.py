"""Evaluation: feature extractors, metrics, the efficacy harness and the agreement classifier."""
