"""2D toy datasets (Gaussian and alpha-stable mixtures, heavy-tailed noise, procedural shapes).

Every dataset is a class named in :data:`genlib.registry.DATASETS` (declared in :mod:`genlib.registry`) and built
from one :class:`ToyParams`; its constructor validates the params (its spec,
:mod:`genlib.data.toy2d_spec`, raising ``ConfigError``) and
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
* The alpha-stable sets need ``data_alpha >= 1.07``: below it a draw the sampler can make (in
  float64) exceeds float32's range, where the points are stored (:func:`genlib.stable.smallest_finite_alpha`).
* The points are computed in float64 and rounded to float32 once, at the end: CPUs whose
  vectorised float64 functions (exp, log, sin, the Box-Muller of ``randn``) differ in the last
  bit, as Intel's and AMD's code paths can, still round to the same float32 points, so the
  default data set is the same bytes on every machine (``tests/test_toy2d.py`` checks its digest).
* ``checkerboard`` is uniform on its dark squares and adds no noise (``std`` is not used).
* ``olympic_rings`` has ``modes = None``: its rings interlock, so a nearest-centre assignment
  would not recover the ring a point came from. Its centres and radius are attributes.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch

from genlib.data import shapes
from genlib.data.splits import Splits
from genlib.data.toy2d_spec import (  # noqa: F401  (ToyParams, check_params: the data section and its checks)
    GridSpec, Gmm2Spec, SasGridSpec, SasSpec, SkewedLevySpec, ToyParams, ToySpec, _is_int, check_params,
)
from genlib.registry import DATASETS
from genlib.stable import sample_sas, sample_skewed_levy

# Unbalanced 3 x 3 grid weights (row-major, i * 3 + j), the usual setting for sas_grid runs.
UNBALANCED_GRID_WEIGHTS: tuple[float, ...] = (0.01, 0.1, 0.3, 0.2, 0.02, 0.15, 0.02, 0.15, 0.05)

# Absorbs float error in floor(cumsum(w) * n), e.g. 0.41 * 100 = 40.99999999999999.
_COUNT_GUARD = 1e-7


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


class ToyDataset(ToySpec):
    """Base of the 2D datasets: validate params (the spec), then sample (n, 2) float32 points."""

    name: str = ""
    modes: torch.Tensor | None = None
    weights: torch.Tensor | None = None

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
        points = self.modes.to(device, torch.float64)[labels] + self._noise(n, generator)
        return points.float(), labels

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n shuffled points with exact per-component counts."""
        return self.sample_labeled(n, generator)[0]


def _gaussian(n: int, std: float, generator: torch.Generator) -> torch.Tensor:
    """(n, 2) centred Gaussian noise of standard deviation std, in float64."""
    return std * torch.randn(n, 2, generator=generator, device=generator.device, dtype=torch.float64)


class Gmm2(Gmm2Spec, MixtureDataset):
    """Two Gaussians at (-theta, 0) and (+theta, 0); n_mixture is ignored."""

    name = "gmm_2"

    def _make_modes(self, p: ToyParams) -> torch.Tensor:
        """(-theta, 0) then (+theta, 0)."""
        return torch.tensor([[-p.theta, 0.0], [p.theta, 0.0]], dtype=torch.float32)

    def _noise(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Gaussian noise of std `std`."""
        return _gaussian(n, self.params.std, generator)


class _Grid(GridSpec, MixtureDataset):
    """sqrt(n_mixture) x sqrt(n_mixture) grid of components at (i, j), spacing 1."""

    def _make_modes(self, p: ToyParams) -> torch.Tensor:
        """Grid means in row-major order."""
        return grid_modes(math.isqrt(p.n_mixture))


class GmmGrid(_Grid):
    """Grid of Gaussians of std `std`."""

    name = "gmm_grid"

    def _noise(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Gaussian noise of std `std`."""
        return _gaussian(n, self.params.std, generator)


class SasGrid(SasGridSpec, _Grid):
    """Grid of symmetric alpha-stable components: mean + std * sample_sas(data_alpha)."""

    name = "sas_grid"

    def _noise(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """SaS noise with characteristic function exp(-|std t|^alpha)."""
        p = self.params
        return p.std * sample_sas(p.data_alpha, (n, 2), generator, isotropic=p.isotropic, dtype=torch.float64)


class SasNoise(SasSpec, MixtureDataset):
    """Plain 2D symmetric alpha-stable noise times std: one component at the origin."""

    name = "sas"

    def _make_modes(self, p: ToyParams) -> torch.Tensor:
        """The origin."""
        return torch.zeros(1, 2)

    def _given_weights(self, p: ToyParams) -> Sequence[float] | None:
        """One component, weight 1 (params' weights are ignored)."""
        return None

    def _noise(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """SaS noise with characteristic function exp(-|std t|^alpha)."""
        p = self.params
        return p.std * sample_sas(p.data_alpha, (n, 2), generator, isotropic=p.isotropic, dtype=torch.float64)


class SkewedLevy(SkewedLevySpec, ToyDataset):
    """Positive (alpha/2)-stable A per coordinate times std: totally skewed, heavy-tailed."""

    name = "skewed_levy"

    def _draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """std * A, A i.i.d. per coordinate."""
        p = self.params
        return p.std * sample_skewed_levy(p.data_alpha, (n, 2), generator, dtype=torch.float64)


class _NoisyShape(ToyDataset):
    """A procedural shape (``shape(n, generator)`` from :mod:`shapes`) plus Gaussian noise of std `std`."""

    shape: Callable[[int, torch.Generator], torch.Tensor]

    def _draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Shape points plus Gaussian noise."""
        return type(self).shape(n, generator).double() + _gaussian(n, self.params.std, generator)


class SwissRoll(_NoisyShape):
    """(x, z) of the swiss roll, standardised to mean 0 and std 1, plus noise."""

    name = "swiss_roll"
    shape = staticmethod(shapes.swiss_roll)


class Rose(_NoisyShape):
    """Five-petal rose r = 3 cos(5 theta), plus noise."""

    name = "rose"
    shape = staticmethod(shapes.rose)


class FractalTree(_NoisyShape):
    """Branches of a depth-6 binary tree, plus noise."""

    name = "fractal_tree"
    shape = staticmethod(shapes.fractal_tree)


class OlympicRings(_NoisyShape):
    """Five interlocking rings in the Olympic layout, plus noise; modes None."""

    name = "olympic_rings"
    centres = shapes.ring_centres()
    radius = shapes.RING_RADIUS
    shape = staticmethod(shapes.olympic_rings)


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
