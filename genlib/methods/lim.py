"""The Levy-Ito Model, LIM (Yoon, Park, Kim & Lim, NeurIPS 2023): continuous-time diffusion
driven by an isotropic alpha-stable Levy process.

**Forward process.** The variance-preserving SDE ``dX = -beta(t)/alpha X dt + beta(t)^(1/alpha) dL``
has the marginal ``X_t = gamma(t) X_0 + sigma(t) eps`` with ``gamma(t) = exp(-int_0^t beta / alpha)``,
``sigma(t) = (1 - gamma(t)^alpha)^(1/alpha)`` and ``eps`` isotropic symmetric alpha-stable; ``gamma``
follows the cosine curve (:class:`~genlib.methods.schedules.ContinuousStableSchedule`). genlib's noise
``eps = sqrt(A) G`` (:mod:`genlib.stable`) has ``E exp(i <u, eps>) = exp(-kappa |u|^alpha)`` with
``kappa = (a_scale / 2)^(alpha / 2)``; the default ``a_scale = 1`` makes ``eps ~ N(0, I)`` at
``alpha = 2``, where LIM is then the Gaussian VP SDE of Song et al. (ICLR 2021).

**Fractional score.** ``S_t(x) = (-Laplacian)^((alpha - 2)/2) grad p_t(x) / p_t(x)`` (LIM, Sec. 3;
``grad log p_t`` at ``alpha = 2``). For the law of ``X_t`` given ``X_0`` (stable, centred at
``gamma X_0``, scale^alpha ``kappa sigma^alpha``) it is ``-(x - gamma X_0) / (alpha kappa sigma^alpha)``
``= -eps / (alpha kappa sigma^(alpha - 1))``, which in Fourier terms follows from
``grad_u exp(-c |u|^alpha) = -alpha c |u|^(alpha - 2) u exp(-c |u|^alpha)``.

**Training** (fractional denoising score matching, LIM Sec. 4): ``t ~ U(t_min, 1]`` and the network
output ``s_theta(X_t, t)`` is regressed on ``sigma^(alpha - 1)`` times that conditional score, the
O(1) target ``-eps / (alpha kappa)`` (``-eps`` at ``alpha = 2``: the VP noise target, negated). The
score used for sampling is ``s_theta * sigma^(1 - alpha)``. Like the authors' code, the default
penalty is smooth L1: the target has infinite variance for ``alpha < 2``.

**Sampling.** The fractional Fokker-Planck equation of the forward SDE is
``d_t p = -div(f x p) - kappa g^alpha (-Laplacian)^(alpha/2) p`` with ``f = -beta/alpha``,
``g^alpha = beta``, and ``(-Laplacian)^(alpha/2) p = -div(S p)``. Matching it in reverse time gives
the reverse SDE drift ``f x - 2 kappa g^alpha S`` (noise ``g dL`` again) and the probability-flow ODE
velocity ``f x - kappa g^alpha S``; at ``alpha = 2`` these are Song et al.'s reverse SDE and ODE.
Holding ``S`` at its value at the start ``s`` of a step ``s -> t < s`` and integrating the linear
part exactly (an exponential integrator), with ``a = gamma(t) / gamma(s) > 1``:

* ``ode``: ``x_t = a x_s + alpha kappa (a - 1) S``;
* ``sde``: ``x_t = a x_s + 2 alpha kappa (a - 1) S + (a^alpha - 1)^(1/alpha) eps'``, ``eps'`` fresh noise
  (the noise integral's scale^alpha is ``kappa (a^alpha - 1)``).

The tests check both with the exact fractional score of alpha-stable data, whose law they must
return, and at ``alpha = 2`` against the VP SDE written out independently.
"""
from __future__ import annotations

import torch

from genlib.methods.base import Method, Net, SampleOptions, clipped_eps, per_sample
from genlib.methods.diffusion_spec import LIMParams, LIMSpec
from genlib.methods.losses import per_sample_loss
from genlib.methods.schedules import ContinuousStableSchedule
from genlib.progress import steps_bar
from genlib.stable import sample_sas


class LIM(LIMSpec, Method):
    """Samplers: ``sde`` (stochastic, alpha-stable increments) and ``ode`` (probability flow)."""

    def __init__(self, params: LIMParams) -> None:
        super().__init__(params)
        self.sch = ContinuousStableSchedule(params.alpha)
        # E exp(i <u, eps>) = exp(-kappa |u|^alpha) for genlib's noise with this a_scale
        self.kappa = (params.a_scale / 2) ** (params.alpha / 2)

    @property
    def alpha(self) -> float:
        return self.params.alpha

    def noise(self, shape, generator, clamp_a=None, clamp_eps=None) -> torch.Tensor:
        p = self.params
        return sample_sas(p.alpha, shape, generator, isotropic=True, a_scale=p.a_scale, clamp_a=clamp_a, clamp_eps=clamp_eps)

    def target(self, eps: torch.Tensor) -> torch.Tensor:
        """``sigma^(alpha - 1)`` times the conditional fractional score: ``-eps / (alpha kappa)``."""
        return eps * (-1.0 / (self.params.alpha * self.kappa))

    def corrupt(self, x0: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p = self.params
        u = torch.rand(x0.shape[0], generator=generator, device=x0.device, dtype=torch.float32)
        t = p.t_min + (1 - p.t_min) * u
        eps = self.noise(x0.shape, generator, p.clamp_a, p.clamp_eps)
        x_t = per_sample(self.sch.gamma(t), x0.shape) * x0 + per_sample(self.sch.sigma(t), x0.shape) * eps
        return x_t, t, self.target(eps)

    def batch_loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return per_sample_loss(pred - target, self.params.loss).mean()

    def times(self, steps: int) -> torch.Tensor:
        """The reverse-time grid ``1 = t_0 > ... > t_steps = t_min`` (float64, uniform)."""
        return torch.linspace(1.0, self.params.t_min, steps + 1, dtype=torch.float64)

    @torch.inference_mode()
    def sample(
        self,
        net: Net,
        shape: tuple[int, ...],
        steps: int,
        generator: torch.Generator,
        options: SampleOptions = SampleOptions(),
        progress: bool = False,
    ) -> torch.Tensor:
        p, device = self.params, generator.device
        times = self.times(steps)
        gamma, sigma = self.sch.gamma(times).tolist(), self.sch.sigma(times).tolist()
        stochastic = self.sampler_name(options) == "sde"
        drift = (2.0 if stochastic else 1.0) * p.alpha * self.kappa
        x = sigma[0] * self.noise(shape, generator, options.clamp_a, options.clamp_eps)
        for left in steps_bar(steps, progress):
            i = steps - left  # step i goes from times[i] to times[i + 1]
            t_in = torch.full((shape[0],), float(times[i]), device=device)
            out = net(x, t_in)
            if options.clip_x0 is not None:  # through the noise the output implies (self.target)
                eps = clipped_eps(x, out * (-p.alpha * self.kappa), gamma[i], sigma[i], options.clip_x0)
                out = self.target(eps)
            score = out * sigma[i] ** (1 - p.alpha)
            a = gamma[i + 1] / gamma[i]
            x = a * x + drift * (a - 1) * score
            if stochastic:
                jump = (a**p.alpha - 1) ** (1 / p.alpha)
                x = x + jump * self.noise(shape, generator, options.clamp_a, options.clamp_eps)
        return x
