"""Means with 95% Student-t intervals over seeds, and paired differences between arms.

A paired difference subtracts, seed by seed, one arm's score from another's (same seed = same
initialisation, data order and augmentation draws), so the seed-to-seed noise both arms share
cancels and the interval is about the difference itself.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float
    n: int

    def excludes_zero(self) -> bool:
        return self.n >= 2 and (self.low > 0 or self.high < 0)

    def to_dict(self) -> dict[str, Any]:
        def clean(v: float) -> float | None:
            return None if v is None or math.isnan(v) else float(v)

        return {"mean": clean(self.mean), "low": clean(self.low), "high": clean(self.high), "n": self.n}


def t_interval(values: Iterable[float], confidence: float = 0.95) -> Interval:
    """Mean and two-sided Student-t interval ``mean +- t(1-a/2, n-1) * sd / sqrt(n)``.
    NaN values (a metric undefined for that run) are dropped; fewer than 2 values give NaN bounds."""
    from scipy import stats

    v = np.asarray([x for x in values if x is not None and not math.isnan(x)], dtype=float)
    n = len(v)
    if n == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    m = float(v.mean())
    if n < 2:
        return Interval(m, float("nan"), float("nan"), n)
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * v.std(ddof=1) / math.sqrt(n))
    return Interval(m, m - half, m + half, n)


def metric_value(scores: Mapping[str, Any], metric: str) -> float:
    """``accuracy``, ``balanced_accuracy``, ``macro_f1`` or ``recall:CLASS`` from a run's scores."""
    if metric.startswith("recall:"):
        v = scores["recall"].get(metric.split(":", 1)[1])
        return float("nan") if v is None else float(v)
    return float(scores[metric])


def by_seed(runs: Iterable[Mapping[str, Any]], arm: str, metric: str) -> dict[int, float]:
    return {int(r["seed"]): metric_value(r["scores"], metric) for r in runs if r["arm"] == arm}


def paired_difference(a: Mapping[int, float], b: Mapping[int, float], confidence: float = 0.95) -> Interval:
    """Interval of ``a[seed] - b[seed]`` over the seeds both have."""
    common = sorted(set(a) & set(b))
    return t_interval([a[s] - b[s] for s in common], confidence)


#: which arms each reference is compared with (None: every other arm); real+classic+dup is the bar
#: of the classic arms only
COMPARED = {"real+classic+dup": ("real+classic", "real+classic+synthetic")}


def summarise(runs: list[Mapping[str, Any]], arms: list[str], metrics: list[str],
              references: tuple[str, ...] = ("real", "real+dup", "real+classic+dup")) -> dict[str, Any]:
    """{"arms": {arm: {metric: interval}}, "paired": {"A - B": {metric: interval}}}."""
    out: dict[str, Any] = {"arms": {}, "paired": {}, "metrics": metrics}
    present = [a for a in arms if any(r["arm"] == a for r in runs)]
    for arm in present:
        out["arms"][arm] = {m: t_interval(by_seed(runs, arm, m).values()).to_dict() for m in metrics}
    for ref in references:
        if ref not in present:
            continue
        for arm in present:
            if arm == ref or (ref == "real+dup" and arm == "real"):
                continue
            if ref in COMPARED and arm not in COMPARED[ref]:
                continue
            out["paired"][f"{arm} - {ref}"] = {
                m: paired_difference(by_seed(runs, arm, m), by_seed(runs, ref, m)).to_dict() for m in metrics}
    return out
