"""Gaussian DDPM (Ho, Jain & Abbeel, NeurIPS 2020) with the cosine schedule (Nichol & Dhariwal, 2021)."""
from __future__ import annotations

import math
import torch

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
