"""Which way each metric is better, as the metric docs say (genlib.metrics, the methods' docs)."""
from __future__ import annotations

import math

HEADLINE = (
    "w1_exact", "w1_sliced", "mmd", "tail_error", "mode_weight_l1", "mode_ratio_worst", "precision", "recall",
    # image runs
    "fid", "kid", "fid_clf", "kid_clf", "precision_clf", "recall_clf", "class_tv", "class_worst_coverage",
    "rare_share_gen",
    # likelihood families (vae, hvae)
    "elbo", "nll_iwae", "bits_per_dim",
    "sampling_time_s",
)

LOWER, HIGHER, NEAR_0, NEAR_1 = "lower", "higher", "near 0", "near 1"
DIRECTION = {
    **dict.fromkeys((
        "w1_exact", "w1_sliced", "tail_error", "mode_weight_l1", "fid", "fid_clf", "class_tv", "class_kl",
        "nll_iwae", "bits_per_dim", "n_nonfinite", "nan_restores", "sampling_time_s", "train_time_s",
    ), LOWER),
    **dict.fromkeys((
        "precision", "recall", "coverage", "precision_clf", "recall_clf", "elbo", "classifier_test_accuracy",
    ), HIGHER),
    **dict.fromkeys(("mmd", "kid", "kid_clf"), NEAR_0),  # unbiased estimates: can be slightly negative
    **dict.fromkeys((
        "density", "mode_ratio_worst", "mode_ratio_min", "mode_ratio_rarest", "class_worst_coverage", "rare_coverage",
    ), NEAR_1),
}
ARROW = {LOWER: "↓", HIGHER: "↑", NEAR_0: "→0", NEAR_1: "→1"}


def direction(metric: str) -> str | None:
    if metric.startswith("class_coverage/"):
        return NEAR_1
    return DIRECTION.get(metric)


def badness(metric: str, value: float) -> float | None:
    """Smaller is better; None for a metric without a direction. Ratios are compared in log
    scale, so 0.5 and 2 are equally far from 1."""
    way = direction(metric)
    if way is None or not math.isfinite(value):
        return None
    if way == NEAR_1:
        return abs(math.log(value)) if value > 0 else math.inf
    return {LOWER: value, HIGHER: -value, NEAR_0: abs(value)}[way]


def best(metric: str, values: list[float | None]) -> set[int]:
    """Indices of the best value(s) of ``values``; empty without a direction, without a finite
    score, or when every value scores the same (no value is better than another)."""
    scored = [(badness(metric, v), i) for i, v in enumerate(values) if v is not None]
    scored = [(s, i) for s, i in scored if s is not None and math.isfinite(s)]
    if len({s for s, _ in scored}) < 2:
        return set()
    top = min(s for s, _ in scored)
    return {i for s, i in scored if s == top}


def ordered(metrics: list[str], chosen: list[str] | None = None) -> list[str]:
    """The chosen (else headline) metrics first, in that order, then the others by name."""
    first = [m for m in (chosen or HEADLINE) if m in metrics]
    return first + sorted(m for m in metrics if m not in first)
