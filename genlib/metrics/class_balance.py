"""Class balance of generated images: the classifier's predicted labels against the training labels.

A generator can reach a good FID while under-producing the rare classes of an imbalanced data set;
these metrics compare the two class distributions directly, against the training shares (the
distribution the generator was trained on, whatever ``eval.reference`` is).

What a number means depends on the sample size ``n``. Each generated share comes with the standard
deviation it would have for a generator that matches the training shares exactly (multinomial
counts: ``sqrt(p (1 - p) / n)``); a class whose expected count ``n p`` is below ``MIN_EXPECTED``
has its coverage refused (NaN), because a count of a few images says nothing of its ratio (at
``n p = 10`` the coverage's relative standard deviation is already about 0.3). The rare classes
exist only on a long-tailed training set (``data.imbalance``): the third with the smallest
training share. All values are flat scalars, so the metrics JSON stays one level deep like
``eval.json`` and ``dvc exp show`` gives each its column; per-class values carry the class index
after a slash (``class_share_gen/3``).
"""
from __future__ import annotations

import math

import torch

from genlib.metrics._images import check_labels

# Pseudo-count added to every generated class count in KL(train || gen), so a class the generator
# never produced gives a large finite value instead of infinity (Krichevsky-Trofimov: 1/2 per class).
KL_PSEUDO_COUNT = 0.5
# Expected generated images of a class (n * training share) below which its coverage is refused.
MIN_EXPECTED = 10
# A label whose softmax probability is below this is less likely than all the other classes
# together: the classifier is guessing, and a class count built on such labels is a guess too.
LOW_CONFIDENCE = 0.5
# Share of low-confidence labels on the samples above which the report warns.
CONFIDENCE_WARNING = 0.1


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


def low_confidence_share(confidence: torch.Tensor) -> float:
    """Share of the classifier's labels whose probability (``confidence``, (N,)) is below ``LOW_CONFIDENCE``."""
    return float((confidence < LOW_CONFIDENCE).double().mean())


def share_sd(share: torch.Tensor | float, n: int) -> torch.Tensor | float:
    """Standard deviation of the share of ``n`` multinomial draws in a cell of probability ``share``."""
    return (share * (1 - share) / n) ** 0.5


def samples_needed(train_shares: torch.Tensor) -> int:
    """The smallest ``eval.nsamples`` at which every class present expects ``MIN_EXPECTED`` images."""
    return math.ceil(MIN_EXPECTED / float(train_shares[train_shares > 0].min()))


def class_balance(pred_labels: torch.Tensor, train_labels: torch.Tensor, num_classes: int,
                  long_tailed: bool = False) -> dict[str, float]:
    """Generated vs training class distributions (keys described in ``genlib.metrics.image_docs``).

    ``class_coverage/<k>`` = generated share / training share (1 is best), NaN for a class absent
    from training or expected fewer than ``MIN_EXPECTED`` times; ``class_worst_coverage`` is NaN
    unless every class present is measurable. The ``rare_*`` keys are there on a long-tailed set only.
    """
    gen = class_shares(pred_labels, num_classes, "pred_labels")
    train = class_shares(train_labels, num_classes, "train_labels")
    n = int(pred_labels.numel())
    present = train > 0
    measurable = present & (n * train >= MIN_EXPECTED)
    nan = torch.full_like(gen, math.nan)
    sd = share_sd(train, n)
    coverage = torch.where(measurable, gen / train.clamp_min(1e-300), nan)
    coverage_sd = torch.where(measurable, sd / train.clamp_min(1e-300), nan)
    smoothed = (gen * n + KL_PSEUDO_COUNT) / (n + KL_PSEUDO_COUNT * num_classes)
    out = {
        "class_tv": 0.5 * float((gen - train).abs().sum()),
        # E|share - p| ~ sd * sqrt(2 / pi) (normal approximation, fair once every n p >= 10)
        "class_tv_faithful": 0.5 * math.sqrt(2 / math.pi) * float(sd.sum()),
        "class_kl": float((train[present] * (train[present] / smoothed[present]).log()).sum()),
        "class_min_expected": n * float(train[present].min()),
        "class_samples_needed": samples_needed(train),
        "class_worst_coverage": float(coverage[present].min()) if bool(measurable[present].all()) else math.nan,
    }
    if long_tailed:
        rare = rare_classes(train)
        share_gen, share_train = float(gen[rare].sum()), float(train[rare].sum())
        ok = n * share_train >= MIN_EXPECTED
        out.update({
            "rare_share_gen": share_gen,
            "rare_share_train": share_train,
            "rare_share_sd": share_sd(share_train, n),
            "rare_coverage": share_gen / share_train if ok else math.nan,
            "rare_coverage_sd": share_sd(share_train, n) / share_train if ok else math.nan,
        })
    for k in range(num_classes):
        out[f"class_share_gen/{k}"] = float(gen[k])
        out[f"class_share_train/{k}"] = float(train[k])
        out[f"class_share_sd/{k}"] = float(sd[k])
        out[f"class_coverage/{k}"] = float(coverage[k])
        out[f"class_coverage_sd/{k}"] = float(coverage_sd[k])
    return out
