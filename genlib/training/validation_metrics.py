"""The metrics the evaluation during training may compute (genlib.training.evaluation), and the way
each is better; without torch, for checking the config at the door."""
from __future__ import annotations

# Sliced W1 and the unbiased MMD^2 (which may dip below 0) of samples against the 2D validation
# points, and the ELBO in nats per validation point of a likelihood family.
DIRECTION = {"w1_sliced": "lower", "mmd": "near 0", "elbo": "higher"}
SAMPLE_METRICS = ("w1_sliced", "mmd")  # 2D points only
VALIDATION_PREFIX = "val_"  # metric m is logged as val_m (plots/train/plots/metrics/val_m.tsv)


def allowed_metrics(kind: str, likelihood_family: bool) -> list[str]:
    """The validation metrics for data of ``kind`` and the method."""
    return [*(SAMPLE_METRICS if kind == "points" else ()), *(("elbo",) if likelihood_family else ())]
