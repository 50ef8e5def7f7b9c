"""Denoising Levy Probabilistic Models (Shariatian, Simsekli & Durmus, ICLR 2025).

Forward process ``X_t = gamma_t X_{t-1} + sigma_t eps_t`` with isotropic alpha-stable ``eps_t``
written in Gaussian form through its positive ``(alpha/2)``-stable variable:
``eps_t = sqrt(A_t) G_t``. Conditioned on ``A_{1:T}`` everything is Gaussian, which gives the
paper's training loss (Prop. 9, one heavy-tailed ``a_t`` per sample) and its samplers.

Noise scale: ``A`` has Laplace transform ``exp(-s ** (alpha/2))`` (``a_scale = 1`` in
:mod:`genlib.stable`), so at ``alpha = 2`` ``A = 1`` and DLPM is exactly DDPM. The published code
uses ``a_scale = 2`` (noise ``N(0, 2I)`` at ``alpha = 2``); ``dlpm.a_scale`` restores it.
"""
from __future__ import annotations

import torch

from genlib.errors import ConfigError
from genlib.methods.base import Method, Net, SampleOptions, clipped_eps, per_sample
from genlib.methods.diffusion_spec import DLPMParams, DLPMSpec  # noqa: F401  (DLPMParams: its section)
from genlib.methods.losses import aggregate, per_sample_loss
from genlib.progress import steps_bar
from genlib.stable import sample_sas, sample_skewed_levy


class DLPM(DLPMSpec, Method):
    """Samplers: ``dlpm`` (stochastic, Sec. 3.2: draws ``A_{1:T}`` and runs the ``Sigma_t``
    recursion) and ``dlim`` (deterministic for ``eta = 0``, Sec. 3.3, stochastic for ``eta > 0``)."""

    @property
    def alpha(self) -> float:
        return self.params.alpha

    def draw_a(self, shape, generator, clamp_a):
        p = self.params
        a_shape = shape[:1] if p.isotropic else shape
        return sample_skewed_levy(p.alpha, a_shape, generator, a_scale=p.a_scale, clamp_a=clamp_a)

    def corrupt(self, x0: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # Prop. 9: t ~ U{1..T}, one a_t ~ A per sample, X_t = bar_gamma_t X_0 + bar_sigma_t sqrt(a_t) z,
        # target eps_t = (X_t - bar_gamma_t X_0) / bar_sigma_t = sqrt(a_t) z.
        p = self.params
        sch = self.schedule(p.diffusion_steps, x0.device)
        t = torch.randint(1, sch.steps + 1, (x0.shape[0],), generator=generator, device=x0.device)
        a = self.draw_a(x0.shape, generator, p.clamp_a)
        eps = sample_sas(p.alpha, x0.shape, generator, isotropic=p.isotropic, a=a, clamp_eps=p.clamp_eps)
        x_t = per_sample(sch.bar_gamma32[t], x0.shape) * x0
        x_t = x_t + per_sample(sch.bar_sigma32[t], x0.shape) * eps
        return x_t, sch.time(t), eps

    def batch_loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        p = self.params
        return aggregate(per_sample_loss(pred - target, p.loss, p.huber_beta), p.monte_carlo, p.mom_groups)

    def check_distributed(self, nproc: int) -> None:
        super().check_distributed(nproc)
        if self.params.monte_carlo == "median_of_means":
            raise ConfigError(
                f"{self.name}.monte_carlo", "median_of_means",
                "mean with run.nproc_per_node > 1 (a median over the whole batch does not split into per-process means)",
            )

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
        sch = self.schedule(steps, generator.device)
        if self.sampler_name(options) == "dlpm":
            return self._sample_dlpm(net, shape, sch, generator, options, progress)
        return self._sample_dlim(net, shape, sch, generator, options, progress)

    def _sample_dlpm(self, net, shape, sch, generator, options, progress):
        device, steps = generator.device, sch.steps
        # A_{1:T} for the whole path, then Sigma_t = sigma_t^2 A_t + gamma_t^2 Sigma_{t-1} (float64).
        a = torch.stack([self.draw_a(shape, generator, options.clamp_a) for _ in range(steps)])
        sigmas = [torch.zeros_like(a[0], dtype=torch.float64)]
        for t in range(1, steps + 1):
            sigmas.append(sch.sigma[t] ** 2 * a[t - 1] + sch.gamma[t] ** 2 * sigmas[-1])
        sig = torch.stack(sigmas)  # (T + 1, ...): Sigma_0 = 0 .. Sigma_T
        # Gamma_t = 1 - gamma_t^2 Sigma_{t-1} / Sigma_t. The posterior of X_{t-1} given X_t, X_0 and
        # A_{1:T} has mean (X_t - bar_sigma_t Gamma_t eps) / gamma_t and variance Gamma_t Sigma_{t-1}.
        # Both coefficients are computed for the whole path before the loop, which then does two
        # fused operations a step besides the network.
        steps_1 = torch.arange(1, steps + 1, device=device)
        big_gamma = 1 - per_sample(sch.gamma[steps_1] ** 2, sig.shape) * sig[:-1] / sig[1:]
        coef = (per_sample(sch.bar_sigma[steps_1] / sch.gamma[steps_1], sig.shape) * big_gamma).float()
        std = (big_gamma * sig[:-1]).sqrt().float()
        bshape = self._bshape(shape)
        x = sig[steps].sqrt().float().reshape(bshape) * torch.randn(shape, generator=generator, device=device)
        inv_gamma = (1 / sch.gamma).tolist()  # host scalars: no waits in the loop
        bar_gamma, bar_sigma = sch.bar_gamma.tolist(), sch.bar_sigma.tolist()
        for t in steps_bar(steps, progress):
            eps = net(x, sch.time(torch.full((shape[0],), t, device=device)))
            eps = clipped_eps(x, eps, bar_gamma[t], bar_sigma[t], options.clip_x0)
            x = torch.addcmul(x * inv_gamma[t], coef[t - 1].reshape(bshape), eps, value=-1)
            if t > 1:
                x.addcmul_(std[t - 1].reshape(bshape), torch.randn(shape, generator=generator, device=device))
        return x

    def _sample_dlim(self, net, shape, sch, generator, options, progress):
        p, device, steps = self.params, generator.device, sch.steps
        gamma, bar_gamma, bar_sigma = sch.gamma.tolist(), sch.bar_gamma.tolist(), sch.bar_sigma.tolist()  # host scalars
        noise = dict(isotropic=p.isotropic, a_scale=p.a_scale, clamp_a=options.clamp_a, clamp_eps=options.clamp_eps)
        x = bar_sigma[steps] * sample_sas(p.alpha, shape, generator, **noise)
        for t in steps_bar(steps, progress):
            eps = net(x, sch.time(torch.full((shape[0],), t, device=device)))
            eps = clipped_eps(x, eps, bar_gamma[t], bar_sigma[t], options.clip_x0)
            x0_part = (x - bar_sigma[t] * eps) / gamma[t]
            # DLIM (Sec. 3.3): keep the predicted noise at scale bar_sigma_{t-1}; with eta > 0 a
            # share sigma = eta * bar_sigma_{t-1} of it is fresh alpha-stable noise.
            sigma = options.eta * bar_sigma[t - 1]
            keep = max(bar_sigma[t - 1] ** p.alpha - sigma**p.alpha, 0.0) ** (1 / p.alpha)
            x = x0_part + keep * eps
            if sigma > 0 and t > 1:
                x = x + sigma * sample_sas(p.alpha, shape, generator, **noise)
        return x

    def _bshape(self, shape):
        return (shape[0], *([1] * (len(shape) - 1))) if self.params.isotropic else shape
