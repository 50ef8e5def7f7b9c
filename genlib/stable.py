"""Alpha-stable random variables in torch, vectorised, drawn from one ``torch.Generator``.

Conventions (Samorodnitsky & Taqqu, 1994; Nolan's S1 parameterisation, as in
``scipy.stats.levy_stable``):

* ``A`` is the totally skewed, positive ``(alpha/2)``-stable variable with Laplace transform
  ``E exp(-s A) = exp(-(a_scale * s) ** (alpha / 2))``. With ``a_scale = 2`` this is
  ``S(alpha/2, 1, 2 cos(pi alpha / 4) ** (2 / alpha), 0)``, the variable of the DLPM paper
  (Shariatian et al., ICLR 2025, Sec. 2) and of LIM (Yoon et al., NeurIPS 2023).
* The symmetric alpha-stable (SaS) noise is sub-Gaussian, ``eps = sqrt(A) * G`` with
  ``G ~ N(0, I)``, so ``E exp(i <t, eps>) = exp(-(a_scale / 2) ** (alpha / 2) * |t| ** alpha)``:
  ``exp(-|t| ** alpha)`` for ``a_scale = 2``. At ``alpha = 2``, ``A`` is the constant ``a_scale``
  and ``eps ~ N(0, a_scale I)``.
* Isotropic noise shares one ``A`` per sample (first dimension); per-coordinate noise draws an
  independent ``A`` for every entry, which makes each coordinate an independent SaS variable.

``A`` is drawn with Kanter's representation of the Chambers-Mallows-Stuck method (Kanter, 1975;
Chambers, Mallows & Stuck, 1976): for ``a = alpha / 2 < 1``, ``U ~ U(0, pi)``, ``E ~ Exp(1)``,
``sin(a U) / sin(U) ** (1 / a) * (sin((1 - a) U) / E) ** ((1 - a) / a)`` has Laplace transform
``exp(-s ** a)``.
"""
from __future__ import annotations

import functools
import math
from typing import Sequence

import torch

# U is kept this far from 0 and pi, and E above TINY, so float32 never divides by zero; the
# truncation sits far beyond any quantile a finite sample can resolve.
_EDGE = 1e-7
_TINY = 1e-30


def check_alpha(alpha: float) -> None:
    if not 0.0 < alpha <= 2.0:
        raise ValueError(f"alpha must be in (0, 2], got {alpha}")


def _uniform(shape, generator, device, dtype):
    return torch.rand(shape, generator=generator, device=device, dtype=dtype)


def _kanter(a: float, r_u: torch.Tensor, r_e: torch.Tensor) -> torch.Tensor:
    """Kanter's variable (module docstring) from two uniforms on [0, 1), in their dtype."""
    u = math.pi * (r_u * (1 - 2 * _EDGE) + _EDGE)
    e = (-torch.log1p(-r_e)).clamp_min(_TINY)
    return torch.sin(a * u) / torch.sin(u) ** (1.0 / a) * (torch.sin((1.0 - a) * u) / e) ** ((1.0 - a) / a)


def largest_a(alpha: float, a_scale: float = 2.0, dtype: torch.dtype = torch.float32) -> float:
    """The largest ``A`` :func:`sample_skewed_levy` can return at ``alpha``, computed as it computes
    a draw, in ``dtype``: both uniforms at the ends ``torch.rand`` reaches (0 and the largest
    number below 1), which with ``U`` near pi and ``E`` at its floor is where ``A`` is largest.
    ``inf`` when some draw overflows."""
    check_alpha(alpha)
    if alpha == 2.0:
        return a_scale
    ends = torch.tensor([0.0, 1.0 - torch.finfo(dtype).eps / 2], dtype=dtype)
    r_u, r_e = torch.cartesian_prod(ends, ends).T
    return float((a_scale * _kanter(alpha / 2.0, r_u.contiguous(), r_e.contiguous())).max())


@functools.cache
def smallest_finite_alpha(a_scale: float = 2.0, dtype: torch.dtype = torch.float32, below: float = math.inf) -> float:
    """The smallest ``alpha`` (to 1e-4, rounded up) at which no draw of ``A`` overflows ``dtype``:
    1.0672 in float32 at ``a_scale = 2``. The largest ``A`` grows as ``alpha`` falls, so the
    bound is found by bisection."""
    # ``below``: a bound on the largest draw other than dtype's overflow (the 2D data sets draw in
    # float64 and store float32: 1.07 there).
    lo, hi = 1e-3, 2.0
    while hi - lo > 1e-5:
        mid = (lo + hi) / 2
        largest = largest_a(mid, a_scale, dtype)
        lo, hi = (lo, mid) if math.isfinite(largest) and largest < below else (mid, hi)
    return math.ceil(hi * 1e4) / 1e4


def sample_skewed_levy(
    alpha: float,
    shape: Sequence[int],
    generator: torch.Generator | None = None,
    *,
    a_scale: float = 2.0,
    clamp_a: float | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Positive ``(alpha/2)``-stable ``A`` of the given shape (see the module docstring).

    At ``alpha = 2`` the variable is the constant ``a_scale`` and no random number is consumed, so
    a heavy-tailed method at ``alpha = 2`` draws exactly the Gaussian noise a Gaussian one would.
    ``clamp_a`` caps ``A`` from above (the DLPM paper's image configs clamp it).
    """
    check_alpha(alpha)
    device = generator.device if generator is not None else torch.device("cpu")
    if alpha == 2.0:
        out = torch.full(tuple(shape), a_scale, device=device, dtype=dtype)
    else:
        u, e = _uniform(shape, generator, device, dtype), _uniform(shape, generator, device, dtype)
        out = a_scale * _kanter(alpha / 2.0, u, e)
    if clamp_a is not None:
        out = out.clamp(max=clamp_a)
    return out


def sample_sas(
    alpha: float,
    shape: Sequence[int],
    generator: torch.Generator | None = None,
    *,
    isotropic: bool = True,
    a_scale: float = 2.0,
    clamp_a: float | None = None,
    clamp_eps: float | None = None,
    a: torch.Tensor | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Symmetric alpha-stable noise ``sqrt(A) * G`` (isotropic or per coordinate).

    ``a`` may be given (shape ``shape[:1]`` for isotropic noise, ``shape`` otherwise) to reuse a
    draw of ``A``; otherwise it is drawn here. ``clamp_eps`` clips every coordinate to
    ``[-clamp_eps, clamp_eps]``.
    """
    shape = tuple(shape)
    if a is None:
        a_shape = shape[:1] if isotropic else shape
        a = sample_skewed_levy(alpha, a_shape, generator, a_scale=a_scale, clamp_a=clamp_a, dtype=dtype)
    if a.dim() == 1 and len(shape) > 1:
        a = a.view(-1, *([1] * (len(shape) - 1)))
    device = generator.device if generator is not None else torch.device("cpu")
    g = torch.randn(shape, generator=generator, device=device, dtype=dtype)
    eps = a.sqrt() * g
    if clamp_eps is not None:
        eps = eps.clamp(-clamp_eps, clamp_eps)
    return eps
