"""The efficacy harness: do synthetic images help YOUR classifier more than duplicating your real
minority images? ``efficacy(...)`` trains the same timm classifier on seven arms over several seeds,
makes every choice on validation images, and reports intervals and paired differences;
``efficacy_sweep(...)`` repeats it at several sizes of one class.

Modules: ``data`` (splits, subsets, hashes), ``sources`` (external validation/test files,
precision), ``arms`` and ``baselines`` (each arm's training set), ``candidates`` (what validation
chooses among), ``generators`` (loading and weight hashes), ``train`` (fit and score one
classifier), ``timing`` (the estimate), ``stats`` (t-intervals, paired differences), ``store``
(resumable runs), ``report`` (markdown and chart), ``runner``, ``sweep``.
"""

from .baselines import ARMS
from .runner import efficacy
from .sweep import efficacy_sweep

__all__ = ["ARMS", "efficacy", "efficacy_sweep"]
