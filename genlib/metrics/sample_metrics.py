"""Sample-quality metrics of generated points ``gen`` (N, d) against reference points ``ref`` (M, d).

Every function takes CPU tensors, draws any randomness from an explicit ``torch.Generator`` (never the
global RNGs), and returns plain Python floats. ``evaluate_samples`` runs all of them and returns one flat
dict whose keys are described in ``METRIC_DOCS``.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from genlib.metrics._util import as_pair, as_points, subsample
from genlib.metrics.manifold import density_coverage, knn_radii, manifold_stats, precision_recall
from genlib.metrics.mmd import mmd_rbf
from genlib.metrics.modes import (
    DEFAULT_QUANTILES,
    assigned_weights,
    mode_weight_error,
    nearest_mode_distance,
    quantile_key,
    tail_error,
)
from genlib.metrics.wasserstein import exact_wasserstein, sliced_wasserstein

__all__ = [
    "METRIC_DOCS",
    "density_coverage",
    "evaluate_samples",
    "exact_wasserstein",
    "knn_radii",
    "metric_keys",
    "mmd_rbf",
    "mode_weight_error",
    "nearest_mode_distance",
    "nonfinite_filter",
    "precision_recall",
    "sliced_wasserstein",
    "tail_error",
]


def _tail_docs() -> dict[str, str]:
    """One line per default tail quantile key."""
    docs = {}
    for q in DEFAULT_QUANTILES:
        docs[quantile_key(q, "gen")] = f"{q:g}-quantile of the generated points' distance to the nearest mode"
        docs[quantile_key(q, "ref")] = f"{q:g}-quantile of the reference points' distance to the nearest mode"
    return docs


METRIC_DOCS: dict[str, str] = {
    "n_nonfinite": "number of generated samples with a NaN or infinite coordinate (dropped before every other metric)",
    "w1_sliced": "sliced Wasserstein-1 (POT, 500 random directions) between all points; lower is better",
    "w1_exact": "exact Wasserstein-1 (POT emd2) between 4,000-point subsamples; lower is better",
    "mmd": "unbiased squared MMD, sum of RBF kernels at (0.1-5)x the median distance, 4,000-point subsamples; ~0 is best, can be slightly negative",
    "precision": "improved precision (Kynkaanniemi et al. 2019, k=5): fraction of generated points inside the reference k-NN manifold; higher is better",
    "recall": "improved recall (Kynkaanniemi et al. 2019, k=5): fraction of reference points inside the generated k-NN manifold; higher is better",
    "density": "density (Naeem et al. 2020, k=5): mean number of reference k-NN balls holding a generated point, over k; ~1 is best",
    "coverage": "coverage (Naeem et al. 2020, k=5): fraction of reference k-NN balls holding a generated point; higher is better (~0.97 for identical distributions)",
    "tail_error": "mean over q in (0.9, 0.99, 0.999) of the squared log-ratio of generated vs reference q-quantiles of the distance to the nearest mode; lower is better",
    **_tail_docs(),
    "mode_weight_l1": "L1 distance between the reference's and the generated mode weights (each point assigned to its nearest mode); lower is better",
    "mode_ratio_rarest": "generated/reference weight ratio of the rarest mode; 1 is best",
    "mode_ratio_min": "smallest generated/reference weight ratio over modes (0 = a dropped mode); 1 is best",
    "mode_ratio_worst": "generated/reference weight ratio of the mode farthest from 1 in log scale; 1 is best",
    "mode_weights_gen": "generated weight of each mode (fraction of points nearest to it)",
}


def nonfinite_filter(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Drop the rows of ``x`` holding a NaN or infinite value; return the kept rows and the number dropped."""
    if x.dim() != 2:
        raise ValueError(f"x must be a 2D (N, d) tensor, got shape {tuple(x.shape)}")
    finite = torch.isfinite(x).all(dim=1)
    return x[finite], int((~finite).sum())


def metric_keys(with_modes: bool) -> list[str]:
    """Keys of ``evaluate_samples``'s result, in order (mode keys only when modes and weights are given)."""
    keys = ["n_nonfinite", "w1_sliced", "w1_exact", "mmd", "precision", "recall", "density", "coverage"]
    keys += ["tail_error"] + [quantile_key(q, w) for q in DEFAULT_QUANTILES for w in ("gen", "ref")]
    if with_modes:
        keys += ["mode_weight_l1", "mode_ratio_min", "mode_ratio_worst", "mode_ratio_rarest", "mode_weights_gen"]
    return keys


def _all_nan(n_nonfinite: int, n_modes: int | None) -> dict[str, float | list[float]]:
    """Result for a sample too degenerate to measure: the non-finite count and NaN everywhere else."""
    out: dict[str, float | list[float]] = {key: math.nan for key in metric_keys(n_modes is not None)}
    out["n_nonfinite"] = n_nonfinite
    if n_modes is not None:
        out["mode_weights_gen"] = [math.nan] * n_modes
    return out


def _manifold_metrics(
    gen: torch.Tensor, ref: torch.Tensor, generator: torch.Generator, k: int, n_manifold: int | None
) -> dict[str, float]:
    """Precision, recall, density and coverage, on ``n_manifold``-point subsamples when given (NaN if too few points)."""
    ref = subsample(ref, n_manifold, generator)
    gen = subsample(gen, n_manifold, generator)
    if min(gen.shape[0], ref.shape[0]) <= k:
        return {"precision": math.nan, "recall": math.nan, "density": math.nan, "coverage": math.nan}
    stats = manifold_stats(ref, gen, k)
    return {"precision": stats.precision, "recall": stats.recall, "density": stats.density, "coverage": stats.coverage}


def evaluate_samples(
    gen: torch.Tensor,
    ref: torch.Tensor,
    generator: torch.Generator,
    modes: torch.Tensor | None = None,
    weights: torch.Tensor | list[float] | None = None,
    *,
    n_exact: int = 4000,
    n_mmd: int = 4000,
    n_projections: int = 500,
    k: int = 5,
    n_manifold: int | None = None,
    on_group: Callable[[str], None] = lambda name: None,
) -> dict[str, float | list[float]]:
    """All sample metrics of ``gen`` against ``ref`` (keys in ``metric_keys``; see ``METRIC_DOCS``);
    ``on_group(name)`` is told each group of metrics before it is computed (progress in a log)."""
    gen, ref = as_points(gen, "gen"), as_points(ref, "ref")
    as_pair(gen, ref, min_rows=0)  # dimension check
    if not bool(torch.isfinite(ref).all()):
        raise ValueError("ref has NaN or infinite values; the reference set must be finite")
    with_modes = modes is not None and weights is not None
    n_modes = int(torch.as_tensor(modes).shape[0]) if with_modes else None
    gen, n_nonfinite = nonfinite_filter(gen)
    if gen.shape[0] < 2 or ref.shape[0] < 2:
        return _all_nan(n_nonfinite, n_modes)
    out: dict[str, float | list[float]] = {"n_nonfinite": n_nonfinite}
    on_group(f"sliced W1 ({n_projections} directions)")
    out["w1_sliced"] = sliced_wasserstein(gen, ref, generator, n_projections=n_projections)
    on_group(f"exact W1 ({n_exact}-point subsamples)")
    out["w1_exact"] = exact_wasserstein(gen, ref, generator, n_points=n_exact)
    on_group(f"MMD ({n_mmd}-point subsamples)")
    out["mmd"] = mmd_rbf(gen, ref, generator, n_points=n_mmd)
    on_group(f"precision, recall, density, coverage (k = {k})")
    out.update(_manifold_metrics(gen, ref, generator, k, n_manifold))
    on_group("tails" + (" and mode weights" if with_modes else ""))
    out.update(tail_error(gen, ref, modes))
    if with_modes:
        # Heavy tails spill points across modes, so the nearest-mode rule gives the held-out set
        # itself weights that differ from the mixture's (1.3x for the 1% mode of sas_grid). The
        # same rule applied to the reference gives the weights the generator should match.
        out.update(mode_weight_error(gen, modes, assigned_weights(ref, modes)))
    return out
