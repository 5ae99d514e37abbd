"""The import path ``gan_augment.filters``: keep only the synthetic images that look like their
class. The filters live in gan_augment.mix.filters; the classifier they need is trained on the
training split only by gan_augment.eval.agreement.train_agreement_classifier."""

from gan_augment.eval.agreement import train_agreement_classifier
from gan_augment.mix.filters import ClassifierAgreement, SampleFilter, draw_accepted

__all__ = ["ClassifierAgreement", "SampleFilter", "draw_accepted", "train_agreement_classifier"]
