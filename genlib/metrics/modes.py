"""Mode-based metrics: tail fidelity of the distance to the nearest mode, and mixture weight recovery."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from genlib.metrics._util import as_pair, as_points, distances

DEFAULT_QUANTILES = (0.9, 0.99, 0.999)
# Floor on quantiles before taking logs, so a degenerate (all-at-the-mode) set gives a finite error.
_LOG_FLOOR = 1e-12


def quantile_key(q: float, which: str) -> str:
    """Metric key of the ``which`` ('gen' or 'ref') q-quantile, e.g. ``tail_q0.99_gen``."""
    return f"tail_q{q:g}_{which}"


def _as_modes(modes: torch.Tensor | Sequence[Sequence[float]], dim: int) -> torch.Tensor:
    """Modes as a (K, dim) float64 tensor."""
    modes = as_points(torch.as_tensor(modes), "modes")
    if modes.shape[0] == 0 or modes.shape[1] != dim:
        raise ValueError(f"modes must have shape (K >= 1, {dim}), got {tuple(modes.shape)}")
    return modes


def _nearest_mode(x: torch.Tensor, modes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(distance, index) of the nearest mode for each row of float64 ``x``."""
    return distances(x, modes).min(dim=1)


def nearest_mode_distance(x: torch.Tensor, modes: torch.Tensor) -> torch.Tensor:
    """Distance (float64, shape (N,)) from each row of ``x`` to its nearest row of ``modes`` (K, d)."""
    x = as_points(x)
    return _nearest_mode(x, _as_modes(modes, x.shape[1]))[0]


def _quantiles(d: torch.Tensor, quantiles: Sequence[float]) -> torch.Tensor:
    """Empirical quantiles (linear interpolation) of a 1D tensor; numpy has no input-size limit."""
    return torch.from_numpy(np.quantile(d.numpy(), np.asarray(quantiles, dtype=np.float64)))


def tail_error(
    gen: torch.Tensor,
    ref: torch.Tensor,
    modes: torch.Tensor | None,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
) -> dict[str, float]:
    """Mean squared log-ratio of gen/ref high quantiles of the nearest-mode distance, plus the quantiles."""
    # Heavy tails show up as the high quantiles of the radial distance to the nearest mode; comparing
    # log-quantiles weighs a factor-10 error the same way at every scale. With no modes, the single
    # mode is the reference mean.
    gen, ref = as_pair(gen, ref)
    centres = ref.mean(dim=0, keepdim=True) if modes is None else _as_modes(modes, ref.shape[1])
    q_gen = _quantiles(_nearest_mode(gen, centres)[0], quantiles)
    q_ref = _quantiles(_nearest_mode(ref, centres)[0], quantiles)
    log_ratio = q_gen.clamp_min(_LOG_FLOOR).log() - q_ref.clamp_min(_LOG_FLOOR).log()
    out = {"tail_error": float(log_ratio.square().mean())}
    for q, g, r in zip(quantiles, q_gen.tolist(), q_ref.tolist()):
        out[quantile_key(q, "gen")] = g
        out[quantile_key(q, "ref")] = r
    return out


def _worst_ratio(ratios: list[float]) -> float:
    """The ratio farthest from 1 in log scale (a ratio of 0 is farthest); first one on ties."""
    return max(ratios, key=lambda r: math.inf if r == 0.0 else abs(math.log(r)))


def assigned_weights(x: torch.Tensor, modes: torch.Tensor) -> torch.Tensor:
    """Fraction of the points of ``x`` nearest to each mode (float64, sums to 1)."""
    x = as_points(x, "x")
    modes = _as_modes(modes, x.shape[1])
    counts = torch.bincount(_nearest_mode(x, modes)[1], minlength=modes.shape[0])
    return counts.double() / x.shape[0]


def mode_weight_error(
    gen: torch.Tensor, modes: torch.Tensor, weights: torch.Tensor | Sequence[float]
) -> dict[str, float | list[float]]:
    """Assign each generated point to its nearest mode and compare the resulting weights with ``weights``.

    ``mode_ratio_rarest`` is the ratio of the mode with the smallest positive weight."""
    gen = as_points(gen, "gen")
    modes = _as_modes(modes, gen.shape[1])
    w_true = torch.as_tensor(weights, dtype=torch.float64).flatten()
    if w_true.shape[0] != modes.shape[0] or not bool((w_true >= 0).all()) or not float(w_true.sum()) > 0:
        raise ValueError(f"weights must be {modes.shape[0]} non-negative numbers (one per mode), got {weights!r}")
    if gen.shape[0] == 0:
        raise ValueError("gen has no rows; cannot estimate mode weights")
    w_true = w_true / w_true.sum()
    counts = torch.bincount(_nearest_mode(gen, modes)[1], minlength=modes.shape[0])
    w_gen = counts.double() / gen.shape[0]
    # Ratios only for modes with positive weight; mass put on a zero-weight mode shows in the L1 term.
    positive = w_true > 0
    ratios = (w_gen[positive] / w_true[positive]).tolist()
    rarest = int(torch.where(positive, w_true, torch.inf).argmin())
    return {
        "mode_weight_l1": float((w_gen - w_true).abs().sum()),
        "mode_ratio_min": min(ratios),
        "mode_ratio_worst": _worst_ratio(ratios),
        "mode_ratio_rarest": float(w_gen[rarest] / w_true[rarest]),
        "mode_weights_gen": w_gen.tolist(),
    }
