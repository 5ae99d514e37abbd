"""The candidates validation chooses among, and how each one keys stored runs.

A candidate is a :class:`.arms.Choice`: generator x ratio x strategy x filter x replace share x
synthetic epochs (SyntheticMix's ``replace`` and ``synthetic_epochs``). Filters may be given
as objects (``SampleFilter``) or as words the harness builds itself on the training images it
is allowed to see: ``"none"`` and ``"agreement[:MIN_CONFIDENCE]"`` (a ClassifierAgreement whose
classifier is trained on the fit rows only, never on validation or test images).

A new SyntheticMix option goes the same way ``replace`` and ``synthetic_epochs`` went: one more
list argument to :func:`grid` and one more loop; the option reaches ``SyntheticMix`` through the
Choice (:meth:`.arms.Choice.options`), and :func:`choice_key` adds its key only when it differs
from the default, so runs stored before it existed keep their keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gan_augment.core.errors import ConfigError
from gan_augment.mix.swaps import check_replace, check_synthetic_epochs

from .arms import Choice, describe_filter
from .data import Images

FILTER_WORDS = ("none", "agreement[:MIN_CONFIDENCE]")


def strategy_key(s: Any) -> Any:
    if isinstance(s, Mapping):
        return {str(k): v for k, v in sorted(s.items(), key=lambda kv: str(kv[0]))}
    if callable(s):
        return f"callable:{getattr(s, '__module__', '?')}.{getattr(s, '__qualname__', type(s).__name__)}"
    return s


def choice_key(c: Choice, weights_sha256: Sequence[str]) -> dict[str, Any]:
    """What identifies a candidate in a stored run's settings."""
    return {"generator_sha256": weights_sha256[c.generator], "ratio": c.ratio,
            "strategy": strategy_key(c.strategy), "filter": describe_filter(c.filter), "refresh": "epoch",
            **c.options()}


def grid(n_generators: int, ratios: Sequence, strategies: Sequence, filters: Sequence,
         replaces: Sequence = (0.0,), synthetic_epochs: Sequence = (None,)) -> list[Choice]:
    """Every combination, generators outermost (the order the report lists them in)."""
    return [Choice(g, r, s, f, p, e) for g in range(n_generators) for r in ratios for s in strategies
            for f in filters for p in replaces for e in synthetic_epochs]


def epoch_options(replaces: Any, synthetic_epochs: Any) -> tuple[list[float], list[int | None]]:
    """The replace shares and synthetic-epoch counts to try, checked (one value or a list each)."""
    p = list(replaces) if isinstance(replaces, (list, tuple)) else [replaces]
    e = list(synthetic_epochs) if isinstance(synthetic_epochs, (list, tuple)) else [synthetic_epochs]
    if not p or not e:
        raise ConfigError("replaces and synthetic_epochs need at least one candidate each "
                          "(replaces=0.0 and synthetic_epochs=None: the options off).")
    return [check_replace(v) for v in p], [check_synthetic_epochs(v) for v in e]


def parse_filter_word(word: str) -> float | None:
    """``"none"`` -> None; ``"agreement"`` -> 0.5; ``"agreement:0.3"`` -> 0.3."""
    w = word.strip().lower()
    if w == "none":
        return None
    name, _, value = w.partition(":")
    if name == "agreement":
        try:
            conf = float(value) if value else 0.5
        except ValueError:
            conf = -1.0
        if 0 < conf <= 1:
            return conf
        raise ConfigError(f"filter {word!r}: MIN_CONFIDENCE must be a number in (0, 1], e.g. agreement:0.5.")
    raise ConfigError(f"unknown filter {word!r}; give {' or '.join(FILTER_WORDS)}, or a SampleFilter object.")


def build_filters(filters: Sequence | None, fit_images: Images, seed: int, steps: int, device) -> list:
    """Filter candidates as objects: words become filters; an agreement classifier is trained once
    (``steps`` steps, ``seed``) on ``fit_images`` and shared by every agreement candidate."""
    if filters is None:
        return [None]
    out, classifier = [], None
    for f in filters:
        if f is None or not isinstance(f, str):
            out.append(f)
            continue
        conf = parse_filter_word(f)
        if conf is None:
            out.append(None)
            continue
        from gan_augment.eval.agreement import train_agreement_classifier
        from gan_augment.mix.filters import ClassifierAgreement

        if classifier is None:
            arrays = (fit_images.images.numpy(), fit_images.labels, fit_images.class_names)
            classifier = train_agreement_classifier(arrays, steps=steps, seed=seed, device=device)
        out.append(ClassifierAgreement(classifier, min_confidence=conf))
    if not out:
        raise ConfigError("filters must be None or a non-empty list of candidates (None or 'none' means no filter).")
    return out
