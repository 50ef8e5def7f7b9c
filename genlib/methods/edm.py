"""EDM (Karras, Aittala, Aila & Laine, "Elucidating the Design Space of Diffusion-Based Generative
Models", NeurIPS 2022): the denoiser of ``x = y + n``, ``n ~ N(0, sigma^2 I)``, preconditioned.

**Preconditioning** (Table 1, "Ours"): the network ``F`` gives the denoiser
``D(x; sigma) = c_skip x + c_out F(c_in x; c_noise)`` with ``c_skip = sigma_d^2 / (sigma^2 + sigma_d^2)``,
``c_out = sigma sigma_d / sqrt(sigma^2 + sigma_d^2)``, ``c_in = 1 / sqrt(sigma^2 + sigma_d^2)`` and
``c_noise = ln(sigma) / 4``, which is the time the network is given (so it lies in about
``[-1.6, 1.1]`` over the sampling range, not in ``[0, 1]``; genlib's time embeddings take any real).

**Training.** ``ln sigma ~ N(P_mean, P_std^2)`` and the loss ``lambda(sigma) |D(y + n; sigma) - y|^2``
with ``lambda = 1 / c_out^2``. Written on ``F``, that loss is ``|F(c_in x; c_noise) - T|^2`` with the
target ``T = (y - c_skip x) / c_out`` (Eq. 8 and Sec. 5): :meth:`corrupt` returns ``(c_in x, c_noise, T)``,
so the loss splits across processes like every diffusion loss here.

**Sampling.** Noise levels ``sigma_i = (sigma_max^(1/rho) + i/(N-1) (sigma_min^(1/rho) -
sigma_max^(1/rho)))^rho`` for ``i < N`` and ``sigma_N = 0`` (Eq. 5), ``x_0 ~ N(0, sigma_0^2 I)``, then
``heun``: the deterministic 2nd-order sampler of Algorithm 1 on ``dx/dsigma = (x - D(x; sigma)) /
sigma``; ``stochastic``: Algorithm 2, which first raises the noise level by ``gamma_i sigma_i``,
``gamma_i = min(S_churn / N, sqrt(2) - 1)`` for ``sigma_i`` in ``[S_tmin, S_tmax]``, adding noise of
std ``S_noise sqrt(sigma_hat^2 - sigma_i^2)``. Both take ``2N - 1`` network evaluations
(:meth:`network_evals`). ``N`` is ``eval.reverse_steps``.

Defaults: ``sigma_min = 0.002``, ``sigma_max = 80``, ``rho = 7``, ``sigma_d = 0.5``,
``P_mean = -1.2``, ``P_std = 1.2`` (Table 1); the churn settings are the paper's ImageNet-64 ones
(``S_churn = 40``, ``S_tmin = 0.05``, ``S_tmax = 50``, ``S_noise = 1.003``, Table 5). ``sigma_d``
is the data's standard deviation: 0.5 suits images in ``[-1, 1]``; set it to your 2D data's.

The unit noise ``n`` is drawn by :meth:`EDM.noise` and its per-coordinate std, which the
preconditioning divides out, is :meth:`EDM.noise_std`: t-EDM (:mod:`genlib.methods.tedm`) changes
those two and nothing else.
"""
from __future__ import annotations

import math
import torch

from genlib.methods.base import Method, Net, SampleOptions, per_sample
from genlib.methods.diffusion_spec import EDMParams, EDMSpec  # noqa: F401  (EDMParams: its section)
from genlib.progress import steps_bar


class EDM(EDMSpec, Method):
    """Samplers ``heun`` (Algorithm 1) and ``stochastic`` (Algorithm 2)."""

    def noise(self, shape: tuple[int, ...], generator: torch.Generator, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The unit noise ``n`` of ``x = y + sigma n``: standard normal."""
        return torch.randn(shape, generator=generator, device=generator.device, dtype=dtype)

    def noise_std(self) -> float:
        """The standard deviation of each coordinate of ``n`` (1), which the preconditioning divides out."""
        return 1.0

    def _scalings(self, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        sd2 = self.params.sigma_data**2
        s = self.noise_std() * sigma  # the std of sigma n
        c_skip = sd2 / (s**2 + sd2)
        c_out = s * self.params.sigma_data / (s**2 + sd2).sqrt()
        c_in = 1 / (s**2 + sd2).sqrt()
        return c_skip, c_out, c_in, sigma.log() / 4

    def corrupt(self, x0: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p = self.params
        z = torch.randn((x0.shape[0],), generator=generator, device=x0.device, dtype=x0.dtype)
        sigma = (p.p_mean + p.p_std * z).exp()
        n = self.noise(x0.shape, generator, x0.dtype)
        return self.denoising_pair(x0, x0 + per_sample(sigma, x0.shape) * n, sigma)

    def denoising_pair(self, x0: torch.Tensor, x: torch.Tensor, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For clean ``x0``, its noisy ``x`` and the per-sample ``sigma``: ``F``'s input ``c_in x``,
        its time ``c_noise`` and its target ``(x0 - c_skip x) / c_out`` (Eq. 8 written on ``F``)."""
        c_skip, c_out, c_in, c_noise = (per_sample(c, x0.shape) for c in self._scalings(sigma))
        return c_in * x, c_noise.view(-1), (x0 - c_skip * x) / c_out

    def batch_loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        # lambda(sigma) |D - y|^2 = |F - T|^2, averaged over the coordinates and the batch.
        return (pred - target).pow(2).mean()

    def denoise(self, net: Net, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        """``D(x; sigma)``, for one noise level shared by the batch or one per sample ``(B,)``."""
        s = sigma if torch.is_tensor(sigma) else torch.full((x.shape[0],), sigma, device=x.device, dtype=x.dtype)
        c_skip, c_out, c_in, c_noise = self._scalings(s)
        shape = x.shape
        return per_sample(c_skip, shape) * x + per_sample(c_out, shape) * net(per_sample(c_in, shape) * x, c_noise)

    def sigmas(self, steps: int) -> list[float]:
        """Eq. 5's ``steps`` noise levels from ``sigma_max`` down to ``sigma_min``, then 0 (float64)."""
        p = self.params
        hi, lo = p.sigma_max ** (1 / p.rho), p.sigma_min ** (1 / p.rho)
        return [(hi + i / (steps - 1) * (lo - hi)) ** p.rho for i in range(steps)] + [0.0]

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
        p = self.params
        device = generator.device
        sig = self.sigmas(steps)
        stochastic = self.sampler_name(options) == "stochastic"
        x = self.noise(shape, generator) * sig[0]
        for i in steps_bar(steps, progress):
            cur, nxt = sig[steps - i], sig[steps - i + 1]  # steps_bar counts down from `steps` to 1
            if stochastic and p.s_tmin <= cur <= p.s_tmax:
                gamma = min(p.s_churn / steps, math.sqrt(2) - 1)
                hat = cur + gamma * cur
                noise = torch.randn(shape, generator=generator, device=device)
                x = x + math.sqrt(hat**2 - cur**2) * p.s_noise * noise
                cur = hat
            d = (x - self.denoise(net, x, cur)) / cur
            x_next = x + (nxt - cur) * d
            if nxt > 0:  # Heun's correction (2nd order), not at the last step to sigma = 0
                d_next = (x_next - self.denoise(net, x_next, nxt)) / nxt
                x_next = x + (nxt - cur) * (d + d_next) / 2
            x = x_next
        return x
