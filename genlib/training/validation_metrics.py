"""The metrics the evaluation during training may compute (genlib.training.evaluation), and the way
each is better; without torch, for checking the config at the door."""
from __future__ import annotations

# Sliced W1, the unbiased MMD^2 (which may dip below 0), the tail error and the worst mode-weight
# ratio (genlib.metrics.modes; the mixtures' modes only) of samples against the 2D validation
# points; FID and KID in the evaluation classifier's features (genlib.metrics.fidelity; KID unbiased,
# so it may dip below 0) of samples against the validation images; and the ELBO in nats per
# validation point of a likelihood family.
DIRECTION = {"w1_sliced": "lower", "mmd": "near 0", "tail_error": "lower", "mode_ratio_worst": "near 1",
             "fid_clf": "lower", "kid_clf": "near 0", "elbo": "higher"}
SAMPLE_METRICS = ("w1_sliced", "mmd", "tail_error", "mode_ratio_worst")  # 2D points only
MODE_METRICS = ("mode_ratio_worst",)  # a set with modes only (data.dataset: gmm_2, gmm_grid, sas_grid, sas)
IMAGE_METRICS = ("fid_clf", "kid_clf")  # images, with the classifier prepare_data trains (eval.classifier_epochs > 0)
VALIDATION_PREFIX = "val_"  # metric m is logged as val_m (plots/train/plots/metrics/val_m.tsv)


def allowed_metrics(kind: str, likelihood_family: bool, has_modes: bool = False, classifier: bool = False) -> list[str]:
    """The validation metrics for data of ``kind`` (with modes or not, with the evaluation
    classifier or not) and the method."""
    if kind == "points":
        samples = [m for m in SAMPLE_METRICS if has_modes or m not in MODE_METRICS]
    else:
        samples = list(IMAGE_METRICS) if classifier else []
    return [*samples, *(("elbo",) if likelihood_family else ())]
