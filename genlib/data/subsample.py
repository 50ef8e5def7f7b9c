"""Seeded choices of which images to keep: random caps, hold-out splits and long-tailed subsets.

Each function returns sorted int64 indices on the CPU, so the kept images stay in their original
order, and draws only from the generator it is given.
"""
from __future__ import annotations

import math

import torch


def _permutation(n: int, generator: torch.Generator) -> torch.Tensor:
    return torch.randperm(n, generator=generator, device=generator.device).cpu()


def random_subset(n: int, k: int, generator: torch.Generator) -> torch.Tensor:
    """``min(k, n)`` of the indices ``0..n-1``, chosen uniformly without replacement."""
    return _permutation(n, generator)[: min(k, n)].sort().values


def holdout_split(n: int, n_test: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Disjoint (train, test) indices of ``0..n-1``, ``n_test`` of them in test."""
    order = _permutation(n, generator)
    return order[n_test:].sort().values, order[:n_test].sort().values


def long_tail_counts(n_max: int, num_classes: int, imbalance: float) -> list[int]:
    """Images kept of class ``i``: ``floor(n_max * imbalance ** (-i / (K - 1)))``.

    The exponential profile of CIFAR-10-LT (Cao et al., 2019, "Learning imbalanced datasets with
    label-distribution-aware margin loss"), used for heavy-tailed diffusion by LIM (Yoon et al.,
    2023) and DLPM (Shariatian et al., 2024): class 0 keeps ``n_max``, the last ``n_max / imbalance``.
    For 5000 images, 10 classes and imbalance 100 it gives 5000, 2997, ..., 83, 50.
    """
    if num_classes == 1:
        return [n_max]
    return [math.floor(n_max * imbalance ** (-i / (num_classes - 1))) for i in range(num_classes)]


def long_tail_subset(
    labels: torch.Tensor, num_classes: int, imbalance: float, generator: torch.Generator
) -> torch.Tensor:
    """Indices keeping :func:`long_tail_counts` images of class ``i`` (label ``i``), chosen at random.

    ``n_max`` is the smallest class count of ``labels``, so every class has enough images (MNIST,
    whose classes range from 5421 to 6742 images, then gives MNIST-LT).
    """
    labels = labels.cpu()
    per_class = torch.bincount(labels, minlength=num_classes)
    counts = long_tail_counts(int(per_class.min()), num_classes, imbalance)
    kept = []
    for cls, count in enumerate(counts):
        members = torch.nonzero(labels == cls).flatten()
        kept.append(members[_permutation(len(members), generator)[:count]])
    return torch.cat(kept).sort().values
