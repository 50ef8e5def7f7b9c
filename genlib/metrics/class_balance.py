"""Class balance of generated images: the classifier's predicted labels against the training labels.

A generator can reach a good FID while under-producing the rare classes of an imbalanced data set;
these metrics compare the two class distributions directly. All values are flat scalars, so the
metrics JSON stays one level deep like ``eval.json`` and ``dvc exp show`` gives each its column;
per-class values carry the class index after a slash (``class_share_gen/3``).
"""
from __future__ import annotations

import math

import torch

from genlib.metrics._images import check_labels

# Pseudo-count added to every generated class count in KL(train || gen), so a class the generator
# never produced gives a large finite value instead of infinity (Krichevsky-Trofimov: 1/2 per class).
KL_PSEUDO_COUNT = 0.5


def class_shares(labels: torch.Tensor, num_classes: int, name: str = "labels") -> torch.Tensor:
    """Fraction of ``labels`` in each class, float64 (num_classes,)."""
    labels = check_labels(labels, None, num_classes, name)
    if labels.numel() == 0:
        raise ValueError(f"{name} is empty")
    return torch.bincount(labels, minlength=num_classes).double() / labels.numel()


def rare_classes(train_shares: torch.Tensor) -> list[int]:
    """The ceil(P/3) classes with the smallest training share, P the number of classes present in training.

    Ties go to the lower class index; classes absent from training are never rare (their ratio is undefined).
    """
    present = [k for k in range(train_shares.numel()) if train_shares[k] > 0]
    ordered = sorted(present, key=lambda k: (float(train_shares[k]), k))
    return sorted(ordered[: math.ceil(len(present) / 3)])


def class_balance(pred_labels: torch.Tensor, train_labels: torch.Tensor, num_classes: int) -> dict[str, float]:
    """Generated vs training class distributions (keys described in ``genlib.metrics.image_docs``).

    ``class_coverage/<k>`` = generated share / training share (1 is best; NaN for a class absent
    from training, which is then left out of ``class_worst_coverage``).
    """
    gen = class_shares(pred_labels, num_classes, "pred_labels")
    train = class_shares(train_labels, num_classes, "train_labels")
    present = train > 0
    coverage = torch.where(present, gen / train.clamp_min(1e-300), torch.full_like(gen, math.nan))
    n_gen = int(pred_labels.numel())
    smoothed = (gen * n_gen + KL_PSEUDO_COUNT) / (n_gen + KL_PSEUDO_COUNT * num_classes)
    rare = rare_classes(train)
    out = {
        "class_tv": 0.5 * float((gen - train).abs().sum()),
        "class_kl": float((train[present] * (train[present] / smoothed[present]).log()).sum()),
        "class_worst_coverage": float(coverage[present].min()),
        "rare_share_gen": float(gen[rare].sum()),
        "rare_share_train": float(train[rare].sum()),
    }
    out["rare_coverage"] = out["rare_share_gen"] / out["rare_share_train"]
    for k in range(num_classes):
        out[f"class_share_gen/{k}"] = float(gen[k])
        out[f"class_share_train/{k}"] = float(train[k])
        out[f"class_coverage/{k}"] = float(coverage[k])
    return out
