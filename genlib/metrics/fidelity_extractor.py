"""genlib's feature extractors for torch-fidelity: the genlib image classifier, registered as
``genlib-classifier``, and torch-fidelity's Inception-v3 with its weights read by genlib,
registered as ``genlib-inception-v3-compat``.

torch-fidelity builds an extractor by name, passing the weights file as
``feature_extractor_weights_path``, and feeds it uint8 (B, C, H, W) batches. The classifier
provides two feature layers: ``penultimate`` (the classifier's features, used for FID, KID and
precision/recall) and ``logits`` (the Inception Score's default).
"""
from __future__ import annotations

import genlib.compat  # noqa: F401  (before torch_fidelity, which imports torchvision)

from collections.abc import Mapping
from io import BytesIO
from pathlib import Path

import torch
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
from torch_fidelity.helpers import vassert
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

from genlib.errors import DataError
from genlib.io import load_torch
from genlib.metrics.classifier import load_classifier
from genlib.metrics.inception_weights import INCEPTION_WEIGHTS_ALLOWED
from genlib.weights import listing, misfit, nonfinite

CLASSIFIER_EXTRACTOR = "genlib-classifier"
INCEPTION_EXTRACTOR = "genlib-inception-v3-compat"
INCEPTION_REMAKE = f"eval.inception_weights should be {INCEPTION_WEIGHTS_ALLOWED}"


class ClassifierFeatureExtractor(FeatureExtractorBase):
    """Features and logits of a saved ``ImageClassifier`` for torch-fidelity's metrics."""

    def __init__(
        self, name: str, features_list: list[str], feature_extractor_weights_path: str | None = None, **kwargs
    ) -> None:
        super().__init__(name, features_list)
        vassert(
            feature_extractor_weights_path is not None,
            f"{name} needs feature_extractor_weights_path: a classifier checkpoint written by save_classifier",
        )
        classifier, _ = load_classifier(feature_extractor_weights_path)
        self.classifier = classifier.requires_grad_(False)

    @staticmethod
    def get_provided_features_list() -> tuple[str, ...]:
        return ("penultimate", "logits")

    @staticmethod
    def get_default_feature_layer_for_metric(metric: str) -> str:
        return "logits" if metric == "isc" else "penultimate"

    @staticmethod
    def can_be_compiled() -> bool:
        return False

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        channels = self.classifier.arch["in_channels"]
        vassert(x.dtype == torch.uint8, f"expecting uint8 images, got {x.dtype}")
        vassert(x.dim() == 4 and x.shape[1] == channels, f"expecting (B, {channels}, H, W), got {tuple(x.shape)}")
        features, logits = self.classifier.features_and_logits(x)
        # float64 out: torch-fidelity computes KID's cubic kernel in the features' dtype, and in
        # float32 its sums of ~(x.y)^3 lose the digits that the unbiased estimate is made of.
        provided = {"penultimate": features.double(), "logits": logits.double()}
        return tuple(provided[name] for name in self.features_list)


def read_inception_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The Inception-v3 weights in ``path``, loaded with ``weights_only=True`` and checked to be a
    mapping of names to finite tensors."""
    weights = load_torch(path, "Inception-v3 weights file", INCEPTION_REMAKE)
    if not isinstance(weights, Mapping):
        raise DataError(f"{path}: not a state dict of tensors (found {type(weights).__name__}); {INCEPTION_REMAKE}")
    odd = [k for k, v in weights.items() if not isinstance(v, torch.Tensor)]
    if odd:
        raise DataError(f"{path}: not a state dict of tensors ({odd[0]!r} is {type(weights[odd[0]]).__name__}); {INCEPTION_REMAKE}")
    bad = nonfinite(weights)
    if bad:
        raise DataError(f"{path}: NaN or inf in the Inception-v3 weights ({listing(bad)}); {INCEPTION_REMAKE}")
    return dict(weights)


class CheckedInceptionV3(FeatureExtractorInceptionV3):
    """torch-fidelity's ``inception-v3-compat`` (the TensorFlow FID network, the same features),
    its weights read by genlib. torch-fidelity itself loads the weights file with
    ``torch.load(weights_only=False)``, where a crafted pickle runs code; here the file is read
    by :func:`read_inception_weights`, and torch-fidelity is handed an in-memory copy that genlib
    serialised from those tensors, so the unpickler it runs sees only what genlib wrote."""

    def __init__(self, name: str, features_list: list[str], feature_extractor_weights_path: str | None = None, **kwargs) -> None:
        # None would make torch-fidelity download and load the file itself; resolve_inception_weights always gives a path
        vassert(feature_extractor_weights_path is not None, f"{name} needs feature_extractor_weights_path: a local weights file")
        file = feature_extractor_weights_path
        weights = read_inception_weights(file)
        copy = BytesIO()
        torch.save(weights, copy)
        copy.seek(0)
        try:
            super().__init__(name, features_list, feature_extractor_weights_path=copy, **kwargs)
        except RuntimeError as err:  # load_state_dict, the last step: the network is built by then
            problem = misfit(self, weights) or str(err).strip().splitlines()[0]
            raise DataError(f"{file}: not torch-fidelity's Inception-v3 FID weights ({problem}); {INCEPTION_REMAKE}") from None


def register_extractors() -> None:
    """Register the classifier and the checked Inception-v3 under their names; a second call does nothing."""
    for name, cls in ((CLASSIFIER_EXTRACTOR, ClassifierFeatureExtractor), (INCEPTION_EXTRACTOR, CheckedInceptionV3)):
        if name not in FEATURE_EXTRACTORS_REGISTRY:
            register_feature_extractor(name, cls)


register_extractors()
