"""Feature extractors for sample-quality metrics: Inception (when its weights are on disk) or an
offline domain CNN trained on the user's own real training images.

Every extractor is an ``nn.Module`` whose ``forward`` maps images (uint8 0..255 or float in
[0, 1], N x C x H x W, any size) to (N, d) features, so it can be handed to torchmetrics'
``FrechetInceptionDistance(feature=...)`` / ``KernelInceptionDistance(feature=...)`` directly.
``logits`` gives class scores for the Inception-Score analogue. ``name`` travels into every
report, so figures computed with different features are never confused."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gan_augment.core.errors import ModelLoadError
from gan_augment.core.layout import to_float01

EXTRACTOR_FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
INCEPTION_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_ENV = "GAN_AUGMENT_INCEPTION_WEIGHTS"
OFFLINE_HINT = (
    "Offline alternative: train a domain feature extractor on your real TRAIN split with "
    "`gan-augment train-extractor --data DATA --split train --out extractors/mine` and pass "
    "`--extractor extractors/mine` (for PBC blood cells a trained one ships as `pbc-domain-cnn`)."
)


class FeatureExtractor(nn.Module):
    """Common face of all extractors: ``forward`` -> features, ``logits`` -> class scores."""

    name: str = "extractor"
    kind: str = "abstract"
    num_features: int = 0
    class_names: list[str] | None = None

    def logits(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """What a report must say about the features it used."""
        return {"name": self.name, "kind": self.kind, "feature_dim": int(self.num_features)}

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @torch.no_grad()
    def extract(self, images: torch.Tensor, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
        """Features and logits of a (possibly large) image batch, in eval mode, returned on CPU."""
        was = self.training
        self.eval()
        feats, logits = [], []
        try:
            for s in range(0, len(images), batch_size):
                x = images[s:s + batch_size].to(self.device)
                f, lg = self._features_and_logits(x)
                feats.append(f.float().cpu())
                logits.append(lg.float().cpu())
        finally:
            self.train(was)
        if not feats:
            return torch.empty(0, self.num_features), torch.empty(0, len(self.class_names or []))
        return torch.cat(feats), torch.cat(logits)

    def _features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self(x), self.logits(x)




# ---- Inception (torch-fidelity) when its weights are on disk ---------------------------------
def inception_weights_candidates() -> list[Path]:
    """Where the FID Inception weights may already be: env var, then torch hub's cache."""
    out = []
    if os.environ.get(INCEPTION_ENV):
        out.append(Path(os.environ[INCEPTION_ENV]).expanduser())
    out.append(Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS_FILE)
    return out


class InceptionExtractor(FeatureExtractor):
    """torch-fidelity's FID InceptionV3 (2048-d pool features, 1008 logits), never downloaded."""

    kind = "inception-v3-fid"
    num_features = 2048

    def __init__(self, weights_path: str | Path | None = None):
        super().__init__()
        try:
            from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
        except ImportError as exc:
            raise ModelLoadError(
                "Inception features need torch-fidelity (`pip install torch-fidelity`) and its "
                f"weights file {INCEPTION_WEIGHTS_FILE} on disk. {OFFLINE_HINT}"
            ) from exc
        path = Path(weights_path).expanduser() if weights_path else None
        if path is None:
            path = next((p for p in inception_weights_candidates() if p.is_file()), None)
        if path is None or not path.is_file():
            where = ", ".join(str(p) for p in inception_weights_candidates())
            raise ModelLoadError(
                f"Inception weights not found (looked in: {where}{'; ' + str(weights_path) if weights_path else ''}). "
                "They are downloaded at run time and nothing is downloaded here: put "
                f"{INCEPTION_WEIGHTS_FILE} at one of those paths, set {INCEPTION_ENV}, or pass "
                f"`--extractor inception:/path/to/{INCEPTION_WEIGHTS_FILE}`. {OFFLINE_HINT}"
            )
        self.net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                               feature_extractor_weights_path=str(path))
        self.name = "inception-v3-fid (torch-fidelity)"
        self.weights_path = str(path)
        self.class_names = None

    def _u8(self, x: torch.Tensor) -> torch.Tensor:
        x = to_float01(x, 3, int(x.shape[-1]))
        return (x.clamp(0, 1) * 255).round().to(torch.uint8)

    def forward(self, x):
        return self.net(self._u8(x))[0]

    def logits(self, x):
        return self.net(self._u8(x))[1]

    def _features_and_logits(self, x):
        f, lg = self.net(self._u8(x))
        return f, lg

    def describe(self):
        return {**super().describe(), "weights": self.weights_path}
