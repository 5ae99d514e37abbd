"""The efficacy harness: do synthetic images help YOUR classifier more than duplicating your real
minority images? ``efficacy(...)`` trains the same timm classifier on five arms over several seeds,
makes every choice on a validation split, and reports intervals and paired differences.

Modules: ``data`` (splits, subsets, hashes), ``arms`` (each arm's training set), ``generators``
(loading and weight hashes), ``train`` (fit and score one classifier), ``stats`` (t-intervals,
paired differences), ``store`` (resumable runs), ``report`` (markdown and chart), ``runner``.
"""

from .arms import ARMS
from .runner import efficacy

__all__ = ["ARMS", "efficacy"]
