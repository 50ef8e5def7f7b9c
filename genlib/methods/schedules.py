"""Noise schedules, computed once in float64 and indexed by the integer time ``t = 0..T``."""
from __future__ import annotations

import math

import torch

from genlib.methods.cosine import COSINE_END, COSINE_OFFSET, MAX_BETA, theta0


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


def cosine_alpha_bar_continuous(t: torch.Tensor, offset: float = COSINE_OFFSET, end: float = COSINE_END) -> torch.Tensor:
    """The same cosine curve at continuous times ``t`` in ``[0, 1]`` (no beta cap), in ``t``'s dtype.

    ``alpha_bar(t) = f(end * t) / f(0)``, so at ``t = k / T`` it equals :func:`cosine_alpha_bar`'s
    ``alpha_bar[k]`` wherever the discrete cap on ``beta`` is inactive.
    """
    return 1 - cosine_one_minus_alpha_bar(t, offset, end)


def cosine_one_minus_alpha_bar(t: torch.Tensor, offset: float = COSINE_OFFSET, end: float = COSINE_END) -> torch.Tensor:
    """``1 - alpha_bar(t)`` without cancellation near ``t = 0`` (float32 keeps its relative precision).

    With ``theta(t) = (end * t + s) / (1 + s) * pi / 2``, ``1 - cos^2(theta) / cos^2(theta_0)`` is
    ``sin(theta - theta_0) * sin(theta + theta_0) / cos^2(theta_0)``.
    """
    th0 = theta0(offset)
    half_gap = end * t / (1 + offset) * math.pi / 2  # theta - theta_0
    return torch.sin(half_gap) * torch.sin(half_gap + 2 * th0) / math.cos(th0) ** 2


class ContinuousStableSchedule:
    """``gamma(t) = alpha_bar(t) ** (1/alpha)`` and ``sigma(t) = (1 - gamma(t) ** alpha) ** (1/alpha)``
    at continuous times: the variance-preserving cosine schedule of LIM (Yoon et al., NeurIPS 2023)
    written as in DLPM, so that ``X_t = gamma(t) X_0 + sigma(t) eps`` for isotropic alpha-stable ``eps``.
    Both keep ``t``'s dtype and device.
    """

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha

    def gamma(self, t: torch.Tensor) -> torch.Tensor:
        return cosine_alpha_bar_continuous(t) ** (1 / self.alpha)

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        return cosine_one_minus_alpha_bar(t).clamp(min=0) ** (1 / self.alpha)
