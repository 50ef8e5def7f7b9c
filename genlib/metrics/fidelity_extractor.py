"""The genlib image classifier as a torch-fidelity feature extractor, registered as ``genlib-classifier``.

torch-fidelity builds it by name, passing the classifier checkpoint (written by
``genlib.metrics.classifier.save_classifier``) as ``feature_extractor_weights_path``, and feeds it
uint8 (B, C, H, W) batches. It provides two feature layers: ``penultimate`` (the classifier's
features, used for FID, KID and precision/recall) and ``logits`` (the Inception Score's default).
"""
from __future__ import annotations

import genlib.compat  # noqa: F401  (before torch_fidelity, which imports torchvision)

import torch
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.helpers import vassert
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

from genlib.metrics.classifier import load_classifier

CLASSIFIER_EXTRACTOR = "genlib-classifier"


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


def register_classifier_extractor() -> None:
    """Register ``ClassifierFeatureExtractor`` under ``CLASSIFIER_EXTRACTOR``; a second call does nothing."""
    if CLASSIFIER_EXTRACTOR not in FEATURE_EXTRACTORS_REGISTRY:
        register_feature_extractor(CLASSIFIER_EXTRACTOR, ClassifierFeatureExtractor)


register_classifier_extractor()
