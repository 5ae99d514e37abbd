"""The classifier behind :class:`gan_augment.mix.filters.ClassifierAgreement`, trained on the
user's training split only."""

from __future__ import annotations

from typing import Any

from gan_augment.core.data import as_dataset
from gan_augment.core.errors import DataError
from gan_augment.eval.domain_cnn import DomainCNN, train_domain_extractor

#: split names whose images must never reach a filter (or anything else that shapes training data)
TEST_SPLITS = ("test", "testing", "holdout", "held-out", "heldout")


def train_agreement_classifier(train_dataset: Any, steps: int = 1000, seed: int = 0,
                               device: str | None = None, **kwargs: Any) -> DomainCNN:
    """Train the project's small domain CNN to tell the classes apart, for filtering synthetic
    images by classifier agreement.

    Only the TRAINING split may be used. The filter decides which synthetic images enter the
    training data; a classifier that has seen test images would pick synthetic images that look
    like the test set, which leaks test information into training and inflates every result
    measured on that test set. So a dataset whose ``split`` says it holds test rows (e.g.
    ``load_dataset(path, split="test")``, or a whole file read without ``split=``, whose split is
    "test+train") is refused. A dataset without a recorded split (in-memory arrays) cannot be
    checked: pass training images only.

    ``train_dataset`` is an ImageDataset, a path or (images, labels[, class_names]) arrays;
    ``kwargs`` go to :func:`gan_augment.eval.domain_cnn.train_domain_extractor` (batch_size, lr, widths,
    image_size, out_dir, verbose). 10 % of the training images are held out to report a
    validation accuracy (``model.info["test_accuracy"]``, labelled by ``eval_split``).
    """
    if "test_dataset" in kwargs:
        raise DataError("train_agreement_classifier takes no test_dataset: the filter's classifier must "
                        "never see test images. Its validation figure comes from held-out training images.")
    ds = as_dataset(train_dataset)
    split = getattr(ds, "split", None)
    parts = [p.strip().lower() for p in split.split("+")] if split else []
    leaked = [p for p in parts if p in TEST_SPLITS]
    if leaked:
        raise DataError(
            f"{ds.source}: this data holds {'+'.join(leaked)!r} rows (split {split!r}). A filter trained on "
            "test images leaks test information into the training data and inflates every result; "
            "train it on the training split only, e.g. load_dataset(path, split='train').")
    kwargs.setdefault("verbose", False)
    kwargs.setdefault("name", "agreement-cnn")
    return train_domain_extractor(ds, steps=steps, seed=seed, device=device, **kwargs)
