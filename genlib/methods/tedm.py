"""t-EDM (Pandey, Pathak, Xu, Mandt, Pritchard, Vahdat & Mardani, "Heavy-Tailed Diffusion Models",
ICLR 2025, arXiv:2410.14171): EDM (:mod:`genlib.methods.edm`) with multivariate Student-t noise of
``nu`` degrees of freedom in place of the Gaussian.

**Perturbation kernel** (Sec. 3, the kernel ``t_d(mu_t x_0, sigma_t^2 I_d, nu)`` with EDM's
``mu_t = 1``, ``sigma_t = sigma``): ``x = y + sigma n`` with ``n ~ t_d(0, I_d, nu)``, drawn as
``n = eps / sqrt(kappa)``, ``eps ~ N(0, I_d)``, ``kappa ~ chi^2_nu / nu``. One ``kappa`` per sample
scales all its ``d`` coordinates (a multivariate t, not ``d`` independent ones: ``|n|^2 / d ~ F(d,
nu)``); each coordinate is Student-t with ``nu`` degrees of freedom and variance ``nu / (nu - 2)``.

**Preconditioning** (Table 1, t-EDM): EDM's, with the noise's variance ``sigma^2`` replaced by
``nu / (nu - 2) sigma^2``: ``c_skip = sigma_d^2 / (s^2 + sigma_d^2)``, ``c_out = s sigma_d /
sqrt(s^2 + sigma_d^2)``, ``c_in = 1 / sqrt(s^2 + sigma_d^2)`` with ``s = sqrt(nu / (nu - 2)) sigma``,
and ``c_noise = ln(sigma) / 4`` as in EDM.

**Training** (Sec. 3, Eq. 8): the gamma-power divergence between the Student-t posteriors, at
``gamma = -2 / (nu + d)``, reduces to EDM's denoising loss ``|D(y + sigma n; sigma) - y|^2`` with the
Student-t ``n``; weighted by ``lambda = 1 / c_out^2`` (Table 1) it is ``|F - T|^2`` on the network, as
in EDM, at ``ln sigma ~ N(P_mean, P_std^2)``. Only the noise and the scalings change.

**Sampling.** The probability-flow ODE ``dx/dsigma = (x - D(x; sigma)) / sigma`` is EDM's: its
velocity is ``E[n | x]`` for ``x = y + sigma n``, which moves the marginals of the kernel whatever the
law of ``n`` (independent of ``y``). ``heun`` runs Algorithm 1's Heun steps on EDM's noise levels
(Karras et al., Eq. 5) from the Student-t prior ``x_0 ~ t_d(0, sigma_max^2 I_d, nu)``; ``2N - 1``
network evaluations. The paper gives no churn (Karras et al.'s Algorithm 2) for this kernel, so
there is no ``stochastic`` sampler.

``nu -> infinity`` gives ``kappa -> 1`` and ``nu / (nu - 2) -> 1``: EDM. Defaults are EDM's; ``nu``
is the one new setting (the paper tunes it per data set: smaller is heavier-tailed).
"""
from __future__ import annotations

import math

import torch

from genlib.methods.base import per_sample
from genlib.methods.diffusion_spec import TEDMParams, TEDMSpec  # noqa: F401  (TEDMParams: its section)
from genlib.methods.edm import EDM


def chi2_over_nu(nu: float, n: int, generator: torch.Generator, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``n`` draws of ``kappa ~ chi^2_nu / nu``: ``chi^2_nu = 2 Gamma(nu / 2, 1)``, drawn from ``generator``."""
    # torch.distributions takes no generator; the native gamma sampler does.
    shape = torch.full((n,), nu / 2, dtype=dtype, device=generator.device)
    return torch._standard_gamma(shape, generator=generator) * (2 / nu)


class TEDM(TEDMSpec, EDM):
    """EDM with Student-t noise; sampler ``heun`` (Algorithm 1 from the Student-t prior)."""

    def noise(self, shape: tuple[int, ...], generator: torch.Generator, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``n = eps / sqrt(kappa)``, one ``kappa`` per sample; ``eps`` first, so the draws begin as EDM's."""
        eps = super().noise(shape, generator, dtype)
        kappa = chi2_over_nu(self.params.nu, shape[0], generator, dtype)
        return eps / per_sample(kappa.sqrt(), shape)

    def noise_std(self) -> float:
        nu = self.params.nu
        return math.sqrt(nu / (nu - 2))
