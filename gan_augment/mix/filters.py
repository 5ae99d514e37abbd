"""Keep only synthetic images a classifier agrees with, and draw more until the count is made up.

A generator trained on a few hundred images of a class also makes images that do not look like
that class (artefacts, blends of two classes). Mixed into training data with the class's label,
they are label noise. :class:`ClassifierAgreement` keeps an image only when a classifier trained on
the user's real TRAINING images gives the intended class a softmax probability of at least
``min_confidence``; :func:`draw_accepted` draws in batches until it has the number asked for, so a
filter never changes how many images a class gets, only which ones.

Every draw comes from the ``torch.Generator`` passed in and the classifier runs in eval mode, so
the kept images are a function of the generator's seed. Each filter counts, per class, how many
images were drawn and how many it accepted (:meth:`SampleFilter.acceptance`): a low rate says the
generator makes that class poorly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from gan_augment.core.contract import GenerativeAugmenter
from gan_augment.core.errors import ConfigError, DataError


class SampleFilter:
    """Base of synthetic-image filters: ``accept(images, class_name)`` -> bool mask, per-class
    acceptance counts, and ``max_draw_factor``: :func:`draw_accepted` gives up after drawing
    ``max_draw_factor * n`` images for ``n`` wanted."""

    def __init__(self, max_draw_factor: float = 20):
        if isinstance(max_draw_factor, bool) or not isinstance(max_draw_factor, (int, float)) \
                or not max_draw_factor >= 1:
            raise ConfigError(f"max_draw_factor must be a number >= 1 (draws per wanted image), got "
                              f"{max_draw_factor!r}.")
        self.max_draw_factor = max_draw_factor
        self._counts: dict[str, list[int]] = {}

    def accept(self, images: torch.Tensor, class_name: str) -> torch.Tensor:  # pragma: no cover
        """A bool tensor (N,): which of ``images`` (float [0, 1], N x C x H x W) to keep."""
        raise NotImplementedError

    def check_classes(self, class_names: Sequence[str]) -> None:
        """Raise a ConfigError now if the filter cannot judge one of ``class_names``."""

    def record(self, class_name: str, accepted: int, drawn: int) -> None:
        c = self._counts.setdefault(str(class_name), [0, 0])
        c[0] += int(accepted)
        c[1] += int(drawn)

    def acceptance(self) -> dict[str, dict[str, float]]:
        """{class: {"accepted": a, "drawn": d, "rate": a / d}} over every draw so far (in this
        process: DataLoader workers keep their own counts). ``accepted`` counts every draw that
        passed, including those beyond the number needed in a last batch."""
        return {k: {"accepted": a, "drawn": d, "rate": a / d if d else float("nan")}
                for k, (a, d) in self._counts.items()}

    def reset_acceptance(self) -> None:
        self._counts = {}

    def describe(self) -> str:
        return type(self).__name__

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_counts"] = {}  # a worker process counts its own draws
        return state


class ClassifierAgreement(SampleFilter):
    """Accept a synthetic image when ``classifier`` gives its intended class a softmax probability
    of at least ``min_confidence``.

    Args:
        classifier: an ``nn.Module`` mapping float images in [0, 1] (N, C, H, W) to logits, or the
            project's DomainCNN (its ``logits`` are used; it resizes and converts channels itself).
            Train it on the TRAINING split only (:func:`gan_augment.eval.agreement.train_agreement_classifier`).
        min_confidence: the probability the intended class needs, in (0, 1].
        class_names: the classifier's classes in logit order; default ``classifier.class_names``.
            The augmenter's classes are matched to these by name.
        max_draw_factor: give up on a class after ``max_draw_factor * n`` draws for ``n`` images.
        batch_size: images per classifier forward pass.
        device: where the classifier runs (default: where its parameters are).
    """

    def __init__(self, classifier: nn.Module, min_confidence: float = 0.5,
                 class_names: Sequence[str] | None = None, max_draw_factor: float = 20,
                 batch_size: int = 256, device: str | torch.device | None = None):
        super().__init__(max_draw_factor)
        if not isinstance(classifier, nn.Module):
            raise ConfigError(f"classifier must be a torch nn.Module mapping images to logits, got "
                              f"{type(classifier).__name__}.")
        if isinstance(min_confidence, bool) or not isinstance(min_confidence, (int, float)) \
                or not 0 < min_confidence <= 1:
            raise ConfigError(f"min_confidence is a softmax probability in (0, 1], got {min_confidence!r}.")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}.")
        names = class_names if class_names is not None else getattr(classifier, "class_names", None)
        if not names:
            raise ConfigError("the filter matches classes by name: pass class_names=[...] (the "
                              "classifier's classes in logit order), or use a classifier with .class_names.")
        self.classifier = classifier
        self.min_confidence = float(min_confidence)
        self.class_names = [str(n) for n in names]
        self.batch_size = batch_size
        self.device = torch.device(device) if device is not None else None
        if self.device is not None:
            classifier.to(self.device)

    def check_classes(self, class_names: Sequence[str]) -> None:
        missing = [str(n) for n in class_names if str(n) not in self.class_names]
        if missing:
            raise ConfigError(
                f"the filter's classifier does not know the augmenter's class(es) {missing}; it knows "
                f"{self.class_names}. Train the classifier on data with these class names, or pass "
                "class_names=[...] naming the classifier's outputs in order.")

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        fn = getattr(self.classifier, "logits", None)  # DomainCNN: forward gives features
        return fn(x) if callable(fn) else self.classifier(x)

    @torch.no_grad()
    def scores(self, images: torch.Tensor, class_name: str) -> torch.Tensor:
        """Softmax probability of ``class_name`` for each image (float, CPU)."""
        self.check_classes([class_name])
        k = self.class_names.index(str(class_name))
        clf = self.classifier
        dev = self.device or next(iter(clf.parameters()), torch.empty(0)).device
        was = clf.training
        clf.eval()
        out = []
        try:
            for s in range(0, len(images), self.batch_size):
                logits = self._logits(images[s:s + self.batch_size].to(dev)).float()
                if logits.ndim != 2 or logits.shape[1] != len(self.class_names):
                    raise ConfigError(f"the classifier returned shape {tuple(logits.shape)}; the filter "
                                      f"needs logits (N, {len(self.class_names)}), one per class name.")
                out.append(logits.softmax(1)[:, k].cpu())
        finally:
            clf.train(was)
        return torch.cat(out) if out else torch.empty(0)

    def accept(self, images: torch.Tensor, class_name: str) -> torch.Tensor:
        return self.scores(images, class_name) >= self.min_confidence

    def describe(self) -> str:
        return f"ClassifierAgreement(min_confidence={self.min_confidence})"

    __repr__ = describe


def draw_accepted(augmenter: GenerativeAugmenter, model_class: int, n: int, generator: torch.Generator,
                  filter: SampleFilter, batch_size: int = 256, stats: dict | None = None) -> torch.Tensor:
    """``n`` images of ``model_class`` that ``filter`` accepts, float [0, 1] (n, C, H, W) on the CPU.

    Draws in batches from ``generator`` and keeps accepted images in draw order. A batch is sized
    from the acceptance so far, so the result depends only on the generator's seed. After
    ``filter.max_draw_factor * n`` draws without enough accepted images it raises a DataError
    naming the class and its acceptance rate. ``stats`` (a dict) receives this call's "accepted"
    and "drawn" counts; the filter's own counts grow as well.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ConfigError(f"n must be a non-negative integer, got {n!r}.")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}.")
    name = augmenter.class_names[augmenter.class_index(model_class)]
    labels = model_class if augmenter.conditional else None
    cap = math.ceil(filter.max_draw_factor * n)
    kept: list[torch.Tensor] = []
    have = drawn = accepted = 0
    try:
        while have < n:
            if drawn >= cap:
                rate = accepted / drawn
                raise DataError(
                    f"class {name!r}: only {accepted} of {drawn} synthetic images ({rate:.1%}) passed "
                    f"{filter.describe()}, and {n} were needed; stopped at max_draw_factor="
                    f"{filter.max_draw_factor} x {n} draws. Lower min_confidence, train the generator "
                    "longer, or drop the filter (filter=None).")
            rate = max(accepted / drawn if drawn else 1.0, 1.0 / filter.max_draw_factor)
            m = min(batch_size, cap - drawn, max(1, math.ceil((n - have) / rate)))
            x = augmenter.sample(m, labels=labels, generator=generator)
            ok = filter.accept(x, name).to(torch.bool).cpu()
            if ok.shape != (m,):
                raise ConfigError(f"{filter.describe()}.accept returned shape {tuple(ok.shape)} for {m} images.")
            drawn += m
            accepted += int(ok.sum())
            take = x[ok][: n - have]
            kept.append(take)
            have += len(take)
    finally:
        filter.record(name, accepted, drawn)
        if stats is not None:
            stats.update(accepted=accepted, drawn=drawn)
    if not kept:
        return torch.empty(0, *augmenter.image_shape)
    return torch.cat(kept)
