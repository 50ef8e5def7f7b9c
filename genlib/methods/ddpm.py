"""Gaussian DDPM (Ho, Jain & Abbeel, NeurIPS 2020) with the cosine schedule (Nichol & Dhariwal, 2021)."""
from __future__ import annotations

import math
import torch

from genlib.methods import cosine
from genlib.methods.base import Method, Net, SampleOptions, per_sample
from genlib.methods.diffusion_spec import DDPMParams, DDPMSpec  # noqa: F401  (DDPMParams: its section)
from genlib.progress import steps_bar


class DDPM(DDPMSpec, Method):
    """``eps``-prediction DDPM; samplers ``ddpm`` (ancestral, Ho et al. Alg. 2, variance
    ``beta_tilde``) and ``ddim`` (Song, Meng & Ermon, ICLR 2021, Eq. 12, with ``eta``)."""

    def corrupt(self, x0: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # Ho et al. Alg. 1: t ~ U{1..T}, eps ~ N(0, I), x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps.
        sch = self.schedule(self.params.diffusion_steps, x0.device)
        t = torch.randint(1, sch.steps + 1, (x0.shape[0],), generator=generator, device=x0.device)
        eps = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        sqrt_ab = per_sample(sch.bar_gamma32[t], x0.shape)
        sqrt_1mab = per_sample(sch.bar_sigma32[t], x0.shape)
        return sqrt_ab * x0 + sqrt_1mab * eps, sch.time(t), eps

    def batch_loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        # || eps - eps_theta(x_t, t) ||^2, averaged over the coordinates and the batch.
        return (pred - target).pow(2).mean()

    # DDPM as a denoiser D(x; sigma) of x = x0 + sigma eps, ScoreGAN's teacher (Karras et al.,
    # NeurIPS 2022, Table 1, "VP"): x_t = x / sqrt(1 + sigma^2) is the process at the time t(sigma)
    # where alpha_bar = 1 / (1 + sigma^2), and D = x - sigma eps_theta(x_t, t(sigma)), which is the
    # table's c_skip = 1, c_out = -sigma, c_in = 1 / sqrt(1 + sigma^2), c_noise = t(sigma).

    def time_of_sigma(self, sigma: torch.Tensor) -> torch.Tensor:
        """The network's time ``t / T`` in ``[0, 1]`` whose noise level is ``sigma``: the inverse of
        :func:`genlib.methods.cosine.ve_sigma`, from ``tan(theta) = sqrt(sigma^2 + sin^2 theta0) / cos theta0``
        (float64 inside, float32 out)."""
        th0 = cosine.theta0()
        s = sigma.to(torch.float64)
        theta = torch.atan(torch.sqrt(s**2 + math.sin(th0) ** 2) / math.cos(th0))
        return ((theta * 2 / math.pi * (1 + cosine.COSINE_OFFSET) - cosine.COSINE_OFFSET) / cosine.COSINE_END).float()

    def vp_input(self, x: torch.Tensor, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The network's input ``x_t = x / sqrt(1 + sigma^2)`` and time ``t(sigma)`` for ``x = x0 + sigma eps``
        (EDM, Table 1, "VP": ``c_in``)."""
        return per_sample(torch.rsqrt(1 + sigma**2), x.shape) * x, self.time_of_sigma(sigma).to(x.device)

    def denoising_pair(self, x0: torch.Tensor, x: torch.Tensor, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For clean ``x0``, its noisy ``x = x0 + sigma eps`` and the per-sample ``sigma``: the network's
        input ``x_t``, its time and its target ``eps`` (DDPM's own loss, written on these)."""
        return (*self.vp_input(x, sigma), (x - x0) / per_sample(sigma, x.shape))

    def denoise(self, net: Net, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        """``D(x; sigma) = x - sigma eps_theta(x / sqrt(1 + sigma^2), t(sigma))``, one level or one per sample."""
        s = sigma if torch.is_tensor(sigma) else torch.full((x.shape[0],), sigma, device=x.device, dtype=x.dtype)
        return x - per_sample(s, x.shape) * net(*self.vp_input(x, s))

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
        device = generator.device
        sch = self.schedule(steps, device)
        ab = (sch.bar_gamma**2).tolist()  # alpha_bar_t, on the host: the loop never waits for the device
        deterministic_ddim = self.sampler_name(options) == "ddim"
        x = torch.randn(shape, generator=generator, device=device) * float(sch.bar_sigma[steps])
        for t in steps_bar(steps, progress):
            tt = torch.full((shape[0],), t, device=device, dtype=torch.long)
            eps = net(x, sch.time(tt))
            if deterministic_ddim:
                x = self._ddim_step(x, eps, ab[t], ab[t - 1], options.eta, generator, t)
            else:
                x = self._ancestral_step(x, eps, ab[t], ab[t - 1], generator, t)
        return x

    @staticmethod
    def _ancestral_step(x, eps, ab_t, ab_prev, generator, t):
        # Ho et al. Eq. 11; posterior variance beta_tilde_t = (1 - ab_{t-1}) / (1 - ab_t) * beta_t.
        beta = 1 - ab_t / ab_prev
        mean = (x - beta / math.sqrt(1 - ab_t) * eps) / math.sqrt(1 - beta)
        if t == 1:
            return mean
        var = (1 - ab_prev) / (1 - ab_t) * beta
        return mean + var**0.5 * torch.randn(x.shape, generator=generator, device=x.device)

    @staticmethod
    def _ddim_step(x, eps, ab_t, ab_prev, eta, generator, t):
        # Song et al. Eq. 12: predicted x0, direction to x_t, and fresh noise of std sigma_t(eta).
        x0 = (x - math.sqrt(1 - ab_t) * eps) / math.sqrt(ab_t)
        sigma = eta * math.sqrt((1 - ab_prev) / (1 - ab_t) * (1 - ab_t / ab_prev))
        x = math.sqrt(ab_prev) * x0 + max(1 - ab_prev - sigma**2, 0.0) ** 0.5 * eps
        if sigma > 0 and t > 1:
            x = x + sigma * torch.randn(x.shape, generator=generator, device=x.device)
        return x
