"""How many synthetic images each class gets: imbalanced-learn's ``sampling_strategy`` for
over-sampling, and the ``ratio`` cap on a class's synthetic share.

The vocabulary and its validation are imbalanced-learn's own ``check_sampling_strategy``, called,
not re-implemented, so "minority", "not majority", a dict or a float mean exactly what they mean to
an imbalanced-learn user. Its errors are ValueErrors; they come back as ConfigErrors with a hint in
SyntheticMix's terms. Cost, measured on the 2-core CPU: importing it pulls in scikit-learn, about
2.3 s once per process, paid when a mix is planned (not at ``import gan_augment``).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np

from gan_augment.core.errors import ConfigError
from gan_augment.core.naming import did_you_mean

STRATEGY_WORDS = ("minority", "not minority", "not majority", "all", "auto")

#: What to add to imbalanced-learn's message, by a phrase in it.
_HINTS = {
    "greater or equal to the original number": "Give each class its target total (real + synthetic), not the number to add.",
    "cannot be used with over-sampler": "SyntheticMix only adds images; use 'not majority' or a dict.",
    "not present in the data": "Use the classes the dataset has (labels or class names) as the dict's keys.",
    "cannot be a list": "Give a dict {class: target_total} instead.",
    "more than 1 class": "A one-class dataset has no minority: use the augmenter's sample() directly.",
}


def class_counts(y: np.ndarray) -> dict[Any, int]:
    """Real items per label, sorted by label, with plain Python keys."""
    uniq, counts = np.unique(y, return_counts=True)
    return {k.item() if hasattr(k, "item") else k: int(c) for k, c in zip(uniq, counts)}


def sampling_targets(strategy: Any, y: Any) -> dict[Any, int]:
    """Number of samples to ADD per class: imbalanced-learn's
    ``check_sampling_strategy(strategy, y, "over-sampling")``, with plain Python keys and values."""
    # imported here: it loads scikit-learn (about 2.3 s), needed only when a mix is planned
    from imblearn.utils import check_sampling_strategy

    y = np.asarray(y)
    if isinstance(strategy, str) and strategy not in STRATEGY_WORDS + ("majority",):
        # imbalanced-learn's own message for this prints its table of functions; say it plainly
        raise ConfigError(f"strategy= must be one of {', '.join(map(repr, STRATEGY_WORDS))} (or a dict "
                          f"{{class: target total}}, a float or a callable). Got {strategy!r} instead."
                          f"{did_you_mean(strategy, STRATEGY_WORDS)}")
    try:
        out = check_sampling_strategy(strategy, y, "over-sampling")
    except ValueError as exc:
        msg = " ".join(str(exc).split())
        hint = next((h for phrase, h in _HINTS.items() if phrase in msg), "")
        raise ConfigError(f"{msg} {hint}".strip()) from exc
    return {(k.item() if hasattr(k, "item") else k): int(v) for k, v in sorted(out.items())}


def ratio_cap(real: int, ratio: float | None) -> int | None:
    """Largest s with s / (real + s) <= ratio, in exact arithmetic on the fraction the float
    stands for (1/3 as typed, not its binary rounding); None means no cap."""
    if ratio is None or ratio >= 1:
        return None
    r = Fraction(ratio).limit_denominator(10**9)
    if r >= 1:  # a float a hair below 1 (0.9999999999999999) is 1 as typed: no cap
        return None
    return int((r * real) // (1 - r))
