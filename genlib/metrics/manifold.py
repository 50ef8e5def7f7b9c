"""k-NN manifold metrics: improved precision/recall and density/coverage.

Both families estimate the support of a point set by the union of balls B(x_i, r_i), where r_i is the
distance from x_i to its k-th nearest neighbour in the same set (the point itself excluded). Balls are
closed (a point exactly on a boundary counts as inside).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from genlib.metrics._util import as_pair, distances, row_chunks


@dataclass(frozen=True)
class ManifoldStats:
    """The four k-NN manifold metrics of a (real, fake) pair."""

    precision: float
    recall: float
    density: float
    coverage: float


def knn_radii(x: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each row of ``x`` to its k-th nearest neighbour within ``x``, the row itself excluded."""
    if not 1 <= k < x.shape[0]:
        raise ValueError(f"k must be in [1, {x.shape[0] - 1}] for a set of {x.shape[0]} points, got {k}")
    radii = torch.empty(x.shape[0], dtype=x.dtype)
    for rows in row_chunks(x.shape[0], x.shape[0]):
        # The k+1 smallest distances include the point itself at distance 0, so index k is the k-th neighbour.
        radii[rows] = distances(x[rows], x).topk(k + 1, dim=1, largest=False).values[:, k]
    return radii


def manifold_stats(real: torch.Tensor, fake: torch.Tensor, k: int = 5) -> ManifoldStats:
    """Precision, recall, density and coverage of ``fake`` against ``real`` in one chunked pass."""
    real, fake = as_pair(real, fake, min_rows=k + 1)
    r_real, r_fake = knn_radii(real, k), knn_radii(fake, k)
    n_real, n_fake = real.shape[0], fake.shape[0]
    fake_in_real = torch.zeros(n_fake, dtype=torch.bool)  # precision: fake_j in some real ball
    real_in_fake = torch.zeros(n_real, dtype=torch.bool)  # recall: real_i in some fake ball
    real_ball_hit = torch.zeros(n_real, dtype=torch.bool)  # coverage: real ball i holds some fake_j
    ball_count = 0  # density: sum_j sum_i 1[fake_j in B(real_i, r_i)]
    for rows in row_chunks(n_fake, n_real):
        d = distances(fake[rows], real)  # (chunk of fake, all real)
        inside_real = d <= r_real[None, :]
        fake_in_real[rows] = inside_real.any(dim=1)
        real_ball_hit |= inside_real.any(dim=0)
        ball_count += int(inside_real.count_nonzero())
        real_in_fake |= (d <= r_fake[rows, None]).any(dim=0)
    return ManifoldStats(
        # Kynkäänniemi et al. 2019, "Improved precision and recall metric for assessing generative
        # models" (NeurIPS), Eq. 1-2: precision = (1/M) sum_j f(fake_j; real), recall = (1/N) sum_i f(real_i; fake).
        precision=float(fake_in_real.double().mean()),
        recall=float(real_in_fake.double().mean()),
        # Naeem et al. 2020, "Reliable fidelity and diversity metrics for generative models" (ICML),
        # Eq. 3-4 (N real, M fake): density = 1/(kM) sum_j sum_i 1[fake_j in B(real_i, r_i)],
        # coverage = (1/N) sum_i 1[exists j: fake_j in B(real_i, r_i)].
        density=ball_count / (k * n_fake),
        coverage=float(real_ball_hit.double().mean()),
    )


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 5) -> tuple[float, float]:
    """Improved precision (fake inside the real manifold) and recall (real inside the fake manifold)."""
    stats = manifold_stats(real, fake, k)
    return stats.precision, stats.recall


def density_coverage(real: torch.Tensor, fake: torch.Tensor, k: int = 5) -> tuple[float, float]:
    """Density (mean number of real k-NN balls holding a fake point, over k) and coverage (fraction of real balls hit)."""
    stats = manifold_stats(real, fake, k)
    return stats.density, stats.coverage
