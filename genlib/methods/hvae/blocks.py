"""The blocks a hierarchical VAE is built from, for flat data (MLPs), in hVAE's vocabulary.

Bottom-up: an ``input`` block maps ``x`` to deterministic features, ``encoder`` blocks map
features to features. Top-down: a ``top`` block holds the trainable top prior ``p(z_L)``,
``gen`` and ``residual`` blocks hold a prior ``p(z_l | z_>l)`` computed from the top-down state
and a posterior ``q(z_l | z_>l, x)`` computed from that state and a bottom-up feature (top-down
inference: Sønderby et al., NeurIPS 2016, Ladder VAE; Kingma et al., NeurIPS 2016, IAF, Sec. 6),
and an ``output`` block maps the last state to the likelihood ``p(x | z)``.

Every latent block answers three calls: ``prior(state, n)``, ``posterior(state, h)`` and
``next_state(state, z, extra)``, ``extra`` being what ``prior`` computed for the state update.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from genlib.nets.dense import dense

LOG_2PI = math.log(2 * math.pi)
LOGVAR_RANGE = (-12.0, 6.0)  # variances in [6e-6, 400]: a guard against collapse, not a prior


class Gaussian(NamedTuple):
    """A diagonal Gaussian ``N(mu, diag exp(logvar))`` over the last dimension."""

    mu: torch.Tensor
    logvar: torch.Tensor

    @classmethod
    def from_params(cls, out: torch.Tensor) -> "Gaussian":
        mu, logvar = out.chunk(2, dim=-1)
        return cls(mu, logvar.clamp(*LOGVAR_RANGE))

    def sample(self, generator: torch.Generator) -> torch.Tensor:
        eps = torch.randn(self.mu.shape, generator=generator, device=self.mu.device, dtype=self.mu.dtype)
        return self.mu + (0.5 * self.logvar).exp() * eps  # reparameterised (Kingma & Welling, Eq. 10)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return -0.5 * ((z - self.mu).pow(2) / self.logvar.exp() + self.logvar + LOG_2PI).sum(-1)

    def kl(self, p: "Gaussian") -> torch.Tensor:
        """``KL(self || p)`` per dimension, in closed form."""
        return 0.5 * (p.logvar - self.logvar + (self.logvar.exp() + (self.mu - p.mu).pow(2)) / p.logvar.exp() - 1)


class InputBlock(nn.Module):
    """``x -> h``: the start of the bottom-up pass."""

    def __init__(self, data_dim: int, width: int, depth: int) -> None:
        super().__init__()
        self.net = dense(data_dim, width, width, depth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class EncoderBlock(nn.Module):
    """``h -> h'``: a further bottom-up feature, residual when the widths agree."""

    def __init__(self, in_width: int, width: int, depth: int) -> None:
        super().__init__()
        self.net = dense(in_width, width, width, depth)
        self.residual = in_width == width

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.net(h) if self.residual else self.net(h)


class TopBlock(nn.Module):
    """The top layer: a trainable prior ``N(mu_0, diag exp(logvar_0))`` (initialised at ``N(0, I)``),
    the posterior ``q(z_L | h)`` and the first top-down state ``s = f(z_L)``."""

    def __init__(self, feature_width: int, latent: int, width: int, depth: int) -> None:
        super().__init__()
        self.prior_mu = nn.Parameter(torch.zeros(latent))
        self.prior_logvar = nn.Parameter(torch.zeros(latent))
        self.q = dense(feature_width, 2 * latent, width, depth)
        self.state = dense(latent, width, width, depth)

    def prior(self, state: torch.Tensor | None, n: int) -> tuple[Gaussian, None]:
        return Gaussian(self.prior_mu.expand(n, -1), self.prior_logvar.clamp(*LOGVAR_RANGE).expand(n, -1)), None

    def posterior(self, state: torch.Tensor | None, h: torch.Tensor) -> Gaussian:
        return Gaussian.from_params(self.q(h))

    def next_state(self, state: torch.Tensor | None, z: torch.Tensor, extra: None) -> torch.Tensor:
        return self.state(z)


class GenBlock(nn.Module):
    """A generative layer in the Ladder VAE's shape: ``p(z_l | s)``, ``q(z_l | s, h)`` from the
    concatenation of the top-down state and the bottom-up feature, and ``s' = f(s, z_l)``."""

    def __init__(self, state_width: int, feature_width: int, latent: int, width: int, depth: int) -> None:
        super().__init__()
        self.p = dense(state_width, 2 * latent, width, depth)
        self.q = dense(state_width + feature_width, 2 * latent, width, depth)
        self.state = dense(state_width + latent, width, width, depth)

    def prior(self, state: torch.Tensor, n: int) -> tuple[Gaussian, None]:
        return Gaussian.from_params(self.p(state)), None

    def posterior(self, state: torch.Tensor, h: torch.Tensor) -> Gaussian:
        return Gaussian.from_params(self.q(torch.cat([state, h], dim=-1)))

    def next_state(self, state: torch.Tensor, z: torch.Tensor, extra: None) -> torch.Tensor:
        return self.state(torch.cat([state, z], dim=-1))


class ResidualBlock(nn.Module):
    """VDVAE's top-down block (Child, ICLR 2021, Fig. 3) on vectors: the prior network gives
    ``p(z_l | s)`` and a feature added to the state, the posterior reads ``concat(s, h)``, and the
    state is updated residually, ``s <- s + feature + W z_l``, then ``s <- s + f(s)``. The last
    layer of ``f`` starts at zero, so a deep stack starts near the identity (VDVAE scales such
    layers by ``1/sqrt(depth)`` for the same reason)."""

    def __init__(self, width: int, feature_width: int, latent: int, depth: int) -> None:
        super().__init__()
        self.latent = latent
        self.p = dense(width, 2 * latent + width, width, depth)
        self.q = dense(width + feature_width, 2 * latent, width, depth)
        self.z_proj = nn.Linear(latent, width)
        self.res = dense(width, width, width, depth)
        nn.init.zeros_(self.res[-1].weight)
        nn.init.zeros_(self.res[-1].bias)

    def prior(self, state: torch.Tensor, n: int) -> tuple[Gaussian, torch.Tensor]:
        out = self.p(state)
        return Gaussian.from_params(out[..., : 2 * self.latent]), out[..., 2 * self.latent:]

    def posterior(self, state: torch.Tensor, h: torch.Tensor) -> Gaussian:
        return Gaussian.from_params(self.q(torch.cat([state, h], dim=-1)))

    def next_state(self, state: torch.Tensor, z: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
        state = state + extra + self.z_proj(z)
        return state + self.res(state)


class OutputBlock(nn.Module):
    """The last state -> ``p(x | z) = N(m, diag s^2)``, the variance learned per point."""

    def __init__(self, state_width: int, data_dim: int, width: int, depth: int) -> None:
        super().__init__()
        self.net = dense(state_width, 2 * data_dim, width, depth)

    def forward(self, state: torch.Tensor) -> Gaussian:
        return Gaussian.from_params(self.net(state))
