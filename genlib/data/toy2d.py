"""2D toy datasets (Gaussian and alpha-stable mixtures, heavy-tailed noise, procedural shapes).

Every dataset is a class registered in :data:`genlib.registry.DATASETS` under its name and built
from one :class:`ToyParams`; its constructor validates the params (raising ``ConfigError``) and
``sample(n, generator)`` returns an ``(n, 2)`` float32 tensor on the generator's device, drawn only
from that generator.

Decisions:

* Mixtures draw an exact number of points per component, ``floor(cumsum(w) * n)`` differences
  (see :func:`component_counts`), then shuffle; mode-weight metrics are free of sampling noise.
* ``gmm_2`` always has two components, at ``(-theta, 0)`` and ``(+theta, 0)`` in that order;
  ``n_mixture`` is ignored for it, and ``weights``, if given, must have length 2.
* ``n_mixture`` is read only by the grids, ``weights`` only by ``gmm_2`` and the grids, ``theta``
  only by ``gmm_2``, ``data_alpha`` only by the alpha-stable sets; ``std`` and ``data_alpha`` are
  checked for every dataset all the same, since they are cheap to get right.
* ``std`` is a Gaussian standard deviation for the Gaussian sets and shapes, and the scale of
  ``sample_sas`` / ``sample_skewed_levy`` noise (``a_scale = 2``) for the alpha-stable sets.
* ``skewed_levy`` needs ``data_alpha < 2``: at 2 its ``A`` is the constant 2 and the set is a point.
* The alpha-stable sets need ``data_alpha >= 1.0672``: below it a draw the float32 sampler can
  make overflows to inf (:func:`genlib.stable.smallest_finite_alpha`).
* ``checkerboard`` is uniform on its dark squares and adds no noise (``std`` is not used).
* ``olympic_rings`` has ``modes = None``: its rings interlock, so a nearest-centre assignment
  would not recover the ring a point came from. Its centres and radius are attributes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real
from typing import Callable, Sequence

import torch

from genlib.data import shapes
from genlib.data.splits import Splits
from genlib.errors import ConfigError
from genlib.registry import DATASETS
from genlib.stable import sample_sas, sample_skewed_levy, smallest_finite_alpha

# Unbalanced 3 x 3 grid weights (row-major, i * 3 + j), the usual setting for sas_grid runs.
UNBALANCED_GRID_WEIGHTS: tuple[float, ...] = (0.01, 0.1, 0.3, 0.2, 0.02, 0.15, 0.02, 0.15, 0.05)

WEIGHT_SUM_TOL = 1e-6
# Absorbs float error in floor(cumsum(w) * n), e.g. 0.41 * 100 = 40.99999999999999.
_COUNT_GUARD = 1e-7


@dataclass(frozen=True)
class ToyParams:
    """Params of the 2D toy datasets (the ``data:`` section of ``params.yaml``)."""

    dataset: str = "sas_grid"
    nsamples: int = 32000  # training points (used by the pipeline, not by the class)
    ntest: int = 15000  # held-out points (used by the pipeline)
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


def check_finite_alpha(p: ToyParams) -> None:
    """The alpha-stable sets' ``data_alpha`` is one at which no draw overflows float32: below
    :func:`~genlib.stable.smallest_finite_alpha` some reachable draw of ``A`` is inf, and its
    point inf or NaN."""
    bound = smallest_finite_alpha()
    if p.data_alpha < bound:
        raise ConfigError("data.data_alpha", p.data_alpha, f"a number in [{bound}, 2] for {p.dataset} (below {bound} the float32 alpha-stable sampler can draw inf)")


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
    """Validate p for dataset class cls (default: the one registered as p.dataset)."""
    if cls is None:
        if not isinstance(p.dataset, str) or p.dataset not in DATASETS:
            raise ConfigError("data.dataset", p.dataset, f"one of {', '.join(DATASETS.names())}")
        cls = DATASETS.get(p.dataset)
    _check_common(p)
    check_own = getattr(cls, "check", None)
    if check_own is not None:
        check_own(p)


# ---------------------------------------------------------------------------------------------
# Mixture helpers
# ---------------------------------------------------------------------------------------------


def component_counts(weights: Sequence[float] | torch.Tensor, n: int) -> torch.Tensor:
    """Exact points per component: differences of floor(cumsum(w) * n), summing to n.

    Pass the weights in float64 (a tuple of floats, or a float64 tensor): float32 rounding of, say,
    0.01 would already move a count by one at n = 32000.
    """
    if isinstance(weights, torch.Tensor):
        w = weights.detach().to("cpu", torch.float64)
    else:
        w = torch.tensor([float(x) for x in weights], dtype=torch.float64)
    cumulative = torch.cumsum(w / w.sum(), dim=0)
    bounds = torch.floor(cumulative * n + _COUNT_GUARD).long().clamp(0, n)
    bounds[-1] = n
    return torch.diff(bounds, prepend=bounds.new_zeros(1))


def grid_modes(side: int) -> torch.Tensor:
    """(side**2, 2) grid means (i, j), i, j = 0..side-1, in row-major order i * side + j."""
    axis = torch.arange(side, dtype=torch.float32)
    return torch.cartesian_prod(axis, axis).reshape(-1, 2)


def _weights_tensor(weights: Sequence[float] | None, k: int) -> torch.Tensor:
    """Weights as a float64 tensor normalised to sum 1 (uniform when None)."""
    if weights is None:
        return torch.full((k,), 1.0 / k, dtype=torch.float64)
    w = torch.tensor([float(x) for x in weights], dtype=torch.float64)
    return w / w.sum()


def _check_n(n: int) -> None:
    """The number of points asked for is a non-negative integer."""
    if not _is_int(n) or n < 0:
        raise ValueError(f"sample: n must be a non-negative integer, got {n!r}")


# ---------------------------------------------------------------------------------------------
# Dataset classes
# ---------------------------------------------------------------------------------------------


class ToyDataset:
    """Base of the 2D datasets: validate params, then sample (n, 2) float32 points."""

    kind = "points"
    name: str = ""
    modes: torch.Tensor | None = None
    weights: torch.Tensor | None = None

    def __init__(self, p: ToyParams) -> None:
        check_params(p, type(self))
        self.params = p

    @classmethod
    def check(cls, p: ToyParams) -> None:
        """Dataset-specific checks on top of the common ones (none by default)."""

    # The data keys the network's input depends on beyond the prepared files (none: points are
    # stored as the network sees them).
    model_keys: tuple[str, ...] = ()

    def load(self, generator: torch.Generator) -> Splits:
        """``nsamples`` training then ``ntest`` held-out points from ``generator``, standardised
        by the training set's mean and std when ``normalized`` (the modes too), and described."""
        p = self.params
        train, test = self.sample(p.nsamples, generator), self.sample(p.ntest, generator)
        modes = self.modes.clone() if self.modes is not None else None
        norm = None
        if p.normalized:
            mean, std = train.mean(0), train.std(0)
            train, test = (train - mean) / std, (test - mean) / std
            modes = (modes - mean) / std if modes is not None else None
            norm = {"mean": mean.tolist(), "std": std.tolist()}
        meta = {
            "dataset": p.dataset,
            "shape": list(train.shape[1:]),
            "ntrain": int(train.shape[0]),
            "ntest": int(test.shape[0]),
            "modes": modes.tolist() if modes is not None else None,
            "weights": self.weights.tolist() if self.weights is not None else None,
            "normalization": norm,
        }
        return Splits(train, test, meta=meta)

    @classmethod
    def input_transform(cls, p: ToyParams) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor]:
        """How a stored training batch becomes the network's input: points are stored that way."""
        return lambda batch, generator: batch

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n points, (n, 2) float32 on the generator's device, in random order."""
        _check_n(n)
        return self._draw(n, generator).float()

    def _draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Draw n i.i.d. points (subclasses)."""
        raise NotImplementedError


class MixtureDataset(ToyDataset):
    """A mixture with exact component counts: modes[k] + noise, shuffled."""

    def __init__(self, p: ToyParams) -> None:
        super().__init__(p)
        self.modes = self._make_modes(p)
        self._weights64 = _weights_tensor(self._given_weights(p), len(self.modes))
        self.weights = self._weights64.float()

    def _make_modes(self, p: ToyParams) -> torch.Tensor:
        """(K, 2) component centres (subclasses)."""
        raise NotImplementedError

    def _given_weights(self, p: ToyParams) -> Sequence[float] | None:
        """The weights the params give for this mixture (None = uniform)."""
        return p.weights

    def _noise(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """(n, 2) noise around the centres (subclasses)."""
        raise NotImplementedError

    def sample_labeled(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """n shuffled points and the component index of each."""
        _check_n(n)
        device = generator.device
        counts = component_counts(self._weights64, n).to(device)
        labels = torch.repeat_interleave(torch.arange(len(counts), device=device), counts)
        labels = labels[torch.randperm(n, generator=generator, device=device)]
        points = self.modes.to(device)[labels] + self._noise(n, generator)
        return points.float(), labels

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n shuffled points with exact per-component counts."""
        return self.sample_labeled(n, generator)[0]


def _gaussian(n: int, std: float, generator: torch.Generator) -> torch.Tensor:
    """(n, 2) centred Gaussian noise of standard deviation std."""
    return std * torch.randn(n, 2, generator=generator, device=generator.device)


@DATASETS.register("gmm_2")
class Gmm2(MixtureDataset):
    """Two Gaussians at (-theta, 0) and (+theta, 0); n_mixture is ignored."""

    name = "gmm_2"

    @classmethod
    def check(cls, p: ToyParams) -> None:
        """theta > 0 and two weights (or None)."""
        if not _is_number(p.theta) or p.theta <= 0:
            raise ConfigError("data.theta", p.theta, "a finite number > 0")
        check_weights(p.weights, 2)

    def _make_modes(self, p: ToyParams) -> torch.Tensor:
        """(-theta, 0) then (+theta, 0)."""
        return torch.tensor([[-p.theta, 0.0], [p.theta, 0.0]], dtype=torch.float32)

    def _noise(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Gaussian noise of std `std`."""
        return _gaussian(n, self.params.std, generator)


class _Grid(MixtureDataset):
    """sqrt(n_mixture) x sqrt(n_mixture) grid of components at (i, j), spacing 1."""

    @classmethod
    def check(cls, p: ToyParams) -> None:
        """n_mixture a perfect square and weights one per component."""
        check_grid_size(p.n_mixture)
        check_weights(p.weights, p.n_mixture)

    def _make_modes(self, p: ToyParams) -> torch.Tensor:
        """Grid means in row-major order."""
        return grid_modes(math.isqrt(p.n_mixture))


@DATASETS.register("gmm_grid")
class GmmGrid(_Grid):
    """Grid of Gaussians of std `std`."""

    name = "gmm_grid"

    def _noise(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Gaussian noise of std `std`."""
        return _gaussian(n, self.params.std, generator)


@DATASETS.register("sas_grid")
class SasGrid(_Grid):
    """Grid of symmetric alpha-stable components: mean + std * sample_sas(data_alpha)."""

    name = "sas_grid"

    @classmethod
    def check(cls, p: ToyParams) -> None:
        """The grid's checks, and a data_alpha whose draws stay finite."""
        super().check(p)
        check_finite_alpha(p)

    def _noise(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """SaS noise with characteristic function exp(-|std t|^alpha)."""
        p = self.params
        return p.std * sample_sas(p.data_alpha, (n, 2), generator, isotropic=p.isotropic)


@DATASETS.register("sas")
class SasNoise(MixtureDataset):
    """Plain 2D symmetric alpha-stable noise times std: one component at the origin."""

    name = "sas"

    @classmethod
    def check(cls, p: ToyParams) -> None:
        """A data_alpha whose draws stay finite."""
        check_finite_alpha(p)

    def _make_modes(self, p: ToyParams) -> torch.Tensor:
        """The origin."""
        return torch.zeros(1, 2)

    def _given_weights(self, p: ToyParams) -> Sequence[float] | None:
        """One component, weight 1 (params' weights are ignored)."""
        return None

    def _noise(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """SaS noise with characteristic function exp(-|std t|^alpha)."""
        p = self.params
        return p.std * sample_sas(p.data_alpha, (n, 2), generator, isotropic=p.isotropic)


@DATASETS.register("skewed_levy")
class SkewedLevy(ToyDataset):
    """Positive (alpha/2)-stable A per coordinate times std: totally skewed, heavy-tailed."""

    name = "skewed_levy"

    @classmethod
    def check(cls, p: ToyParams) -> None:
        """data_alpha < 2 (at 2 every point is (2 std, 2 std))."""
        if p.data_alpha >= 2:
            raise ConfigError("data.data_alpha", p.data_alpha, "a number in (0, 2) for skewed_levy")
        check_finite_alpha(p)

    def _draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """std * A, A i.i.d. per coordinate."""
        p = self.params
        return p.std * sample_skewed_levy(p.data_alpha, (n, 2), generator)


class _NoisyShape(ToyDataset):
    """A procedural shape (``shape(n, generator)`` from :mod:`shapes`) plus Gaussian noise of std `std`."""

    shape: Callable[[int, torch.Generator], torch.Tensor]

    def _draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Shape points plus Gaussian noise."""
        return type(self).shape(n, generator) + _gaussian(n, self.params.std, generator)


@DATASETS.register("swiss_roll")
class SwissRoll(_NoisyShape):
    """(x, z) of the swiss roll, standardised to mean 0 and std 1, plus noise."""

    name = "swiss_roll"
    shape = staticmethod(shapes.swiss_roll)


@DATASETS.register("rose")
class Rose(_NoisyShape):
    """Five-petal rose r = 3 cos(5 theta), plus noise."""

    name = "rose"
    shape = staticmethod(shapes.rose)


@DATASETS.register("fractal_tree")
class FractalTree(_NoisyShape):
    """Branches of a depth-6 binary tree, plus noise."""

    name = "fractal_tree"
    shape = staticmethod(shapes.fractal_tree)


@DATASETS.register("olympic_rings")
class OlympicRings(_NoisyShape):
    """Five interlocking rings in the Olympic layout, plus noise; modes None."""

    name = "olympic_rings"
    centres = shapes.ring_centres()
    radius = shapes.RING_RADIUS
    shape = staticmethod(shapes.olympic_rings)


@DATASETS.register("checkerboard")
class Checkerboard(ToyDataset):
    """Uniform on the dark squares of a 4 x 4 board over [-4, 4]^2 (no noise, std unused)."""

    name = "checkerboard"

    def _draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Uniform points in dark squares."""
        return shapes.checkerboard(n, generator)


TOY_DATASETS: tuple[str, ...] = (
    "gmm_2",
    "gmm_grid",
    "sas_grid",
    "sas",
    "skewed_levy",
    "swiss_roll",
    "rose",
    "fractal_tree",
    "olympic_rings",
    "checkerboard",
)


def make_dataset(p: ToyParams) -> ToyDataset:
    """The dataset registered as p.dataset, built from p (ConfigError on bad params)."""
    check_params(p)
    return DATASETS.get(p.dataset)(p)
