"""How many synthetic images each class gets: imbalanced-learn's ``sampling_strategy`` words for
over-sampling, and the ``ratio`` cap on a class's synthetic share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction
from numbers import Real
from typing import Any

import numpy as np

from gan_augment.core.errors import ConfigError
from gan_augment.core.naming import did_you_mean

STRATEGY_WORDS = ("minority", "not minority", "not majority", "all", "auto")


def _class_counts(y: np.ndarray) -> dict[Any, int]:
    uniq, counts = np.unique(y, return_counts=True)
    return {k.item() if hasattr(k, "item") else k: int(c) for k, c in zip(uniq, counts)}


def _check_dict(wanted: Mapping, stats: dict[Any, int]) -> dict[Any, int]:
    missing = set(wanted) - set(stats)
    if missing:
        raise ConfigError(
            f"The {missing} target class is/are not present in the data. "
            f"Classes present: {sorted(stats)}; use those keys (or class names) in the strategy dict."
        )
    if any(n < 0 for n in wanted.values()):
        raise ConfigError(
            "The number of samples in a class cannot be negative."
            f"'sampling_strategy' contains some negative value: {dict(wanted)}"
        )
    out = {}
    for k, n in wanted.items():
        if n < stats[k]:
            raise ConfigError(
                "With over-sampling methods, the number of samples in a class should be greater "
                f"or equal to the original number of samples. Originally, there is {stats[k]} "
                f"samples and {n} samples are asked (class {k!r}). Give each class its target "
                "total (real + synthetic), not the number to add."
            )
        out[k] = int(n) - stats[k]
    return out


def sampling_targets(strategy: Any, y: Sequence | np.ndarray) -> dict[Any, int]:
    """Number of samples to ADD per class, exactly as imbalanced-learn's
    ``check_sampling_strategy(strategy, y, "over-sampling")`` returns it (sorted by class)."""
    y = np.asarray(y)
    stats = _class_counts(y)
    if len(stats) <= 1:
        raise ConfigError(
            f"The target 'y' needs to have more than 1 class. Got {len(stats)} class instead. "
            "A one-class dataset has no minority; pass strategy={class: target_total} ... only "
            "with two or more classes, or use the augmenter's sample() directly."
        )
    order = list(stats)  # sorted, as np.unique sorts; ties resolve to the first, as in imblearn
    n_major = max(stats.values())
    majority = max(order, key=stats.get)
    minority = min(order, key=stats.get)
    if isinstance(strategy, str):
        if strategy == "majority":
            raise ConfigError("'sampling_strategy'='majority' cannot be used with over-sampler. "
                              "SyntheticMix only adds images; use 'not majority' or a dict.")
        if strategy not in STRATEGY_WORDS:
            hint = did_you_mean(strategy, STRATEGY_WORDS)
            raise ConfigError(
                "When 'sampling_strategy' is a string, it needs to be one of "
                f"{STRATEGY_WORDS}. Got '{strategy}' instead.{hint}"
            )
        keep = {
            "minority": lambda k: k == minority,
            "not minority": lambda k: k != minority,
            "not majority": lambda k: k != majority,
            "auto": lambda k: k != majority,
            "all": lambda k: True,
        }[strategy]
        return {k: n_major - stats[k] for k in order if keep(k)}
    if isinstance(strategy, Mapping):
        return dict(sorted(_check_dict(strategy, stats).items()))
    if isinstance(strategy, (list, tuple)):
        raise ConfigError("'sampling_strategy' cannot be a list for samplers which are not cleaning "
                          "methods. Give a dict {class: target_total} instead.")
    if isinstance(strategy, Real) and not isinstance(strategy, bool):
        if strategy <= 0 or strategy > 1:
            raise ConfigError(
                "When 'sampling_strategy' is a float, it should be in the range (0, 1]. "
                f"Got {strategy} instead."
            )
        if len(stats) != 2:
            raise ConfigError(
                '"sampling_strategy" can be a float only when the type of target is binary. '
                "For multi-class, use a dict."
            )
        out = {k: int(n_major * strategy - stats[k]) for k in order if k != majority}
        if any(n <= 0 for n in out.values()):
            raise ConfigError(
                "The specified ratio required to remove samples from the minority class while "
                "trying to generate new samples. Please increase the ratio."
            )
        return out
    if callable(strategy):
        return dict(sorted(_check_dict(strategy(y), stats).items()))
    raise ConfigError(
        f"sampling_strategy must be one of {STRATEGY_WORDS}, a float, a dict or a callable; "
        f"got {type(strategy).__name__}."
    )


def ratio_cap(real: int, ratio: float | None) -> int | None:
    """Largest s with s / (real + s) <= ratio, in exact arithmetic on the fraction the float
    stands for (1/3 as typed, not its binary rounding); None means no cap."""
    if ratio is None or ratio >= 1:
        return None
    r = Fraction(ratio).limit_denominator(10**9)
    if r >= 1:  # a float a hair below 1 (0.9999999999999999) is 1 as typed: no cap
        return None
    return int((r * real) // (1 - r))
