"""Noise schedules, computed once in float64 and indexed by the integer time ``t = 0..T``."""
from __future__ import annotations

import math

import torch

# Improved DDPM (Nichol & Dhariwal, 2021), Eq. 17: offset s and the cap on beta_t.
COSINE_OFFSET = 0.008
MAX_BETA = 0.999
# Where the curve stops, as a fraction of its full length. The full curve ends at alpha_bar = 0,
# which makes the last step singular (beta_T capped at 0.999, gamma_T ~ 0.03): with T = 100 the
# network's error at t = T is then amplified ~30x and samples run away. Stopping at 0.99, as the
# DLPM authors' code effectively does, leaves alpha_bar_T = 2.4e-4 and a tame last step.
COSINE_END = 0.99


def cosine_alpha_bar(
    steps: int, offset: float = COSINE_OFFSET, max_beta: float = MAX_BETA, end: float = COSINE_END
) -> torch.Tensor:
    """``alpha_bar[t]`` for ``t = 0..steps`` (``alpha_bar[0] = 1``), the cosine schedule.

    ``alpha_bar(u) = f(u) / f(0)``, ``f(u) = cos((u + s) / (1 + s) * pi / 2) ** 2`` on
    ``u = end * t / T``;
    each ``beta_t = 1 - alpha_bar[t] / alpha_bar[t-1]`` is capped at ``max_beta`` (Nichol & Dhariwal,
    2021, Sec. 3.2). The same continuous curve serves every number of steps, so a model trained
    with ``T`` steps can be sampled with fewer: the network sees ``t / T`` in ``[0, 1]``.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    u = end * torch.arange(steps + 1, dtype=torch.float64) / steps
    f = torch.cos((u + offset) / (1 + offset) * math.pi / 2) ** 2
    ratio = (f[1:] / f[:-1]).clamp(min=1 - max_beta)
    return torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(ratio, 0)])


class StableSchedule:
    """The scale-preserving schedule of DLPM (Shariatian et al., ICLR 2025, Sec. 3).

    ``gamma_t = alpha_t ** (1/alpha)``, ``sigma_t = (1 - gamma_t ** alpha) ** (1/alpha)`` and their
    cumulative versions ``bar_gamma_t = prod gamma_s = alpha_bar_t ** (1/alpha)``,
    ``bar_sigma_t = (1 - bar_gamma_t ** alpha) ** (1/alpha)``, so that
    ``X_t = bar_gamma_t X_0 + bar_sigma_t eps`` with ``eps`` alpha-stable. At ``alpha = 2`` these are
    DDPM's ``sqrt(alpha_t)``, ``sqrt(beta_t)``, ``sqrt(alpha_bar_t)`` and ``sqrt(1 - alpha_bar_t)``.
    All tensors have length ``T + 1`` and index 0 is ``t = 0`` (``bar_gamma = 1``, ``bar_sigma = 0``).
    """

    def __init__(self, steps: int, alpha: float, device: torch.device | str = "cpu") -> None:
        self.steps, self.alpha = steps, alpha
        alpha_bar = cosine_alpha_bar(steps)
        alphas = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bar[1:] / alpha_bar[:-1]])
        gamma = alphas ** (1 / alpha)
        bar_gamma = alpha_bar ** (1 / alpha)
        self.gamma = gamma.to(device)
        self.sigma = (1 - gamma**alpha).clamp(min=0) ** (1 / alpha)
        self.sigma = self.sigma.to(device)
        self.bar_gamma = bar_gamma.to(device)
        self.bar_sigma = ((1 - bar_gamma**alpha).clamp(min=0) ** (1 / alpha)).to(device)
        # float32 copies for the training loss, indexed once per step
        self.bar_gamma32, self.bar_sigma32 = self.bar_gamma.float(), self.bar_sigma.float()

    def time(self, t: torch.Tensor) -> torch.Tensor:
        """The network's time input: ``t / T`` in ``[0, 1]`` (float32)."""
        return (t.to(torch.float32) / self.steps)
