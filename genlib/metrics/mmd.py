"""Unbiased squared maximum mean discrepancy with a sum of Gaussian (RBF) kernels."""
from __future__ import annotations

from collections.abc import Sequence

import torch

from genlib.metrics._util import as_pair, row_chunks, squared_distances, subsample

# Multiples of the median pairwise distance used as default bandwidths.
BANDWIDTH_FACTORS = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
# The median heuristic is estimated on at most this many pooled points (about 2M pairs).
MEDIAN_POINTS = 2000


def median_distance(x: torch.Tensor, generator: torch.Generator) -> float:
    """Median pairwise distance among the rows of ``x`` (on a random subset of ``MEDIAN_POINTS`` rows)."""
    x = subsample(x, MEDIAN_POINTS, generator)
    rows, cols = torch.triu_indices(x.shape[0], x.shape[0], offset=1)
    if rows.numel() == 0:
        return 0.0
    d = squared_distances(x, x)[rows, cols].sqrt()
    return float(d.median())


def default_bandwidths(gen: torch.Tensor, ref: torch.Tensor, generator: torch.Generator) -> list[float]:
    """Median heuristic: the median pairwise distance of the pooled points times ``BANDWIDTH_FACTORS``."""
    # Gretton et al. 2012, "A kernel two-sample test" (JMLR), Sec. 8: median heuristic bandwidth.
    median = median_distance(torch.cat([gen, ref]), generator)
    if not median > 0.0:  # all points coincide (or NaN): any scale gives the same (zero) MMD
        median = 1.0
    return [median * f for f in BANDWIDTH_FACTORS]


def _kernel_sum(x: torch.Tensor, y: torch.Tensor, bandwidths: Sequence[float]) -> float:
    """Sum over all pairs (x_i, y_j) of sum_h exp(-|x_i - y_j|^2 / (2 h^2)), in bounded-memory row chunks."""
    scales = torch.tensor([-0.5 / h**2 for h in bandwidths], dtype=torch.float64)
    total = 0.0
    for rows in row_chunks(x.shape[0], y.shape[0]):
        sq = squared_distances(x[rows], y)
        total += float(sum(torch.exp(s * sq).sum() for s in scales))
    return total


def mmd_rbf(
    gen: torch.Tensor,
    ref: torch.Tensor,
    generator: torch.Generator,
    bandwidths: Sequence[float] | None = None,
    n_points: int = 4000,
) -> float:
    """Unbiased (U-statistic) squared MMD between subsamples of ``gen`` and ``ref``; may be slightly negative."""
    # Gretton et al. 2012, Lemma 6: with k = sum_h k_h,
    #   MMD_u^2 = 1/(n(n-1)) sum_{i!=j} k(x_i,x_j) + 1/(m(m-1)) sum_{i!=j} k(y_i,y_j)
    #             - 2/(nm) sum_{i,j} k(x_i,y_j).
    # The diagonal terms k(x_i,x_i) = len(bandwidths) are removed from the within-set sums.
    gen, ref = as_pair(gen, ref, min_rows=2)
    gen = subsample(gen, n_points, generator)
    ref = subsample(ref, n_points, generator)
    if bandwidths is None:
        bandwidths = default_bandwidths(gen, ref, generator)
    if len(bandwidths) == 0 or any(not h > 0 for h in bandwidths):
        raise ValueError(f"bandwidths must be a non-empty list of positive numbers, got {bandwidths!r}")
    n, m, n_kernels = gen.shape[0], ref.shape[0], len(bandwidths)
    k_xx = (_kernel_sum(gen, gen, bandwidths) - n * n_kernels) / (n * (n - 1))
    k_yy = (_kernel_sum(ref, ref, bandwidths) - m * n_kernels) / (m * (m - 1))
    k_xy = _kernel_sum(gen, ref, bandwidths) / (n * m)
    return float(k_xx + k_yy - 2.0 * k_xy)
