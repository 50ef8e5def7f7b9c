"""The specs of the 2D toy datasets: their params (the ``data:`` section) and checks, without torch.

A spec validates its params when it is built (raising ``ConfigError``); the datasets of
:mod:`genlib.data.toy2d` inherit their spec and add the sampling.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real
from typing import Sequence

from genlib.errors import ConfigError
from genlib.params import non_negative, spec
from genlib.registry import DATASETS

WEIGHT_SUM_TOL = 1e-6


@dataclass(frozen=True)
class ToyParams:
    """Params of the 2D toy datasets (the ``data:`` section of ``params.yaml``)."""

    dataset: str = "sas_grid"
    nsamples: int = 32000  # training points (used by the pipeline, not by the class)
    ntest: int = 15000  # held-out points (used by the pipeline)
    # Validation points held out of the nsamples (seeded) for the evaluation during training.
    nval: int = spec(0, non_negative, "a non-negative integer")
    n_mixture: int = 9  # number of components; must be a perfect square for grids
    std: float = 0.1  # component scale (Gaussian std, or alpha-stable scale)
    theta: float = 3.0  # distance of the two gmm_2 modes from the origin (+-theta on x)
    weights: tuple[float, ...] | None = None  # mixture weights, None = uniform
    data_alpha: float = 1.7  # stability index of the alpha-stable data
    isotropic: bool = True  # one A per point (isotropic) or per coordinate
    normalized: bool = False  # standardise both splits by the training set's mean and std (load)


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


def _is_number(value: object) -> bool:
    """A real, finite number that is not a bool."""
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: object) -> bool:
    """An integer that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def _check_common(p: ToyParams) -> None:
    """Checks that hold whatever the dataset."""
    if not _is_int(p.nsamples) or p.nsamples < 1:
        raise ConfigError("data.nsamples", p.nsamples, "an integer >= 1")
    if not _is_int(p.ntest) or p.ntest < 1:
        raise ConfigError("data.ntest", p.ntest, "an integer >= 1")
    if not _is_number(p.std) or p.std <= 0:
        raise ConfigError("data.std", p.std, "a finite number > 0")
    if not _is_number(p.data_alpha) or not 0 < p.data_alpha <= 2:
        raise ConfigError("data.data_alpha", p.data_alpha, "a number in (0, 2]")
    for key in ("isotropic", "normalized"):
        if not isinstance(getattr(p, key), bool):
            raise ConfigError(f"data.{key}", getattr(p, key), "true or false")


def check_grid_size(n_mixture: object) -> int:
    """Side of the square grid of n_mixture components, or ConfigError."""
    if not _is_int(n_mixture) or n_mixture < 1 or math.isqrt(n_mixture) ** 2 != n_mixture:
        raise ConfigError("data.n_mixture", n_mixture, "a perfect square >= 1 (1, 4, 9, 16, ...)")
    return math.isqrt(n_mixture)


def check_weights(weights: Sequence[float] | None, k: int) -> None:
    """Weights are None or k finite non-negative numbers summing to 1 (within 1e-6)."""
    if weights is None:
        return
    shape = f"None (uniform) or {k} non-negative numbers summing to 1"
    if isinstance(weights, (str, bytes)) or not isinstance(weights, Sequence) or len(weights) != k:
        raise ConfigError("data.weights", weights, f"{shape} (one per component)")
    if not all(_is_number(w) for w in weights):
        raise ConfigError("data.weights", weights, f"{shape}, all finite numbers")
    if any(w < 0 for w in weights):
        raise ConfigError("data.weights", weights, f"{shape}, none negative")
    if abs(math.fsum(weights) - 1.0) > WEIGHT_SUM_TOL:
        raise ConfigError("data.weights", weights, f"{shape} (within {WEIGHT_SUM_TOL:g})")


def check_params(p: ToyParams, cls: type | None = None) -> None:
    """Validate p for dataset class cls (default: the spec registered as p.dataset)."""
    if cls is None:
        if not isinstance(p.dataset, str) or p.dataset not in DATASETS:
            raise ConfigError("data.dataset", p.dataset, f"one of {', '.join(DATASETS.names())}")
        cls = DATASETS.spec(p.dataset)
    _check_common(p)
    check_own = getattr(cls, "check", None)
    if check_own is not None:
        check_own(p)


# The smallest data_alpha at which no draw of the alpha-stable sampler, run in float64 as the data
# sets run it, exceeds float32's largest number (the points are stored in float32): the value of
# genlib.stable.smallest_finite_alpha(dtype=float64, below=float32 max), written here so that
# checking needs no torch (tests/test_stable.py checks that the two agree).
FINITE_ALPHA = 1.07


def check_finite_alpha(p: ToyParams) -> None:
    """The alpha-stable sets' ``data_alpha`` is one at which no draw overflows float32: below
    ``FINITE_ALPHA`` some reachable draw of ``A`` is inf, and its point inf or NaN."""
    if p.data_alpha < FINITE_ALPHA:
        raise ConfigError("data.data_alpha", p.data_alpha, f"a number in [{FINITE_ALPHA}, 2] for {p.dataset} (below {FINITE_ALPHA} the float32 alpha-stable sampler can draw inf)")


class ToySpec:
    """A 2D set's spec: the common checks, then its own (``check``)."""

    kind = "points"
    Params = ToyParams
    # The data keys the network's input depends on beyond the prepared files (none: points are
    # stored as the network sees them).
    model_keys: tuple[str, ...] = ()
    has_modes = False  # a mixture around modes (meta.json's modes; the mode metrics need them)

    def __init__(self, p: ToyParams) -> None:
        check_params(p, type(self))
        self.params = p

    @classmethod
    def check(cls, p: ToyParams) -> None:
        """Dataset-specific checks on top of the common ones (none by default)."""


class Gmm2Spec(ToySpec):
    has_modes = True

    @classmethod
    def check(cls, p: ToyParams) -> None:
        """theta > 0 and two weights (or None)."""
        if not _is_number(p.theta) or p.theta <= 0:
            raise ConfigError("data.theta", p.theta, "a finite number > 0")
        check_weights(p.weights, 2)


class GridSpec(ToySpec):
    has_modes = True

    @classmethod
    def check(cls, p: ToyParams) -> None:
        """n_mixture a perfect square and weights one per component."""
        check_grid_size(p.n_mixture)
        check_weights(p.weights, p.n_mixture)


class SasGridSpec(GridSpec):
    @classmethod
    def check(cls, p: ToyParams) -> None:
        """The grid's checks, and a data_alpha whose draws stay finite."""
        super().check(p)
        check_finite_alpha(p)


class SasSpec(ToySpec):
    has_modes = True

    @classmethod
    def check(cls, p: ToyParams) -> None:
        """A data_alpha whose draws stay finite."""
        check_finite_alpha(p)


class SkewedLevySpec(ToySpec):
    @classmethod
    def check(cls, p: ToyParams) -> None:
        """data_alpha < 2 (at 2 every point is (2 std, 2 std)), and draws that stay finite."""
        if p.data_alpha >= 2:
            raise ConfigError("data.data_alpha", p.data_alpha, "a number in (0, 2) for skewed_levy")
        check_finite_alpha(p)
