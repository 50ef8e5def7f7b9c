"""The blocks a hierarchical VAE is built from, in hVAE's vocabulary: MLPs for flat data, 3x3
convolutions for images (``net`` is :func:`~genlib.nets.dense.dense` or :func:`conv`; features and
latents then carry their channels in dimension 1, at the resolution of the block).

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

from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from genlib.methods.likelihoods import LOGVAR_RANGE, gaussian_log_prob
from genlib.methods.own_networks import Share

Net = Callable[[int, int, int, int], nn.Module]  # (in, out, width, depth) -> module


class Gaussian(NamedTuple):
    """A diagonal Gaussian ``N(mu, diag exp(logvar))`` over the last dimension."""

    mu: torch.Tensor
    logvar: torch.Tensor

    @classmethod
    def from_params(cls, out: torch.Tensor) -> "Gaussian":
        mu, logvar = out.chunk(2, dim=1)
        return cls(mu, logvar.clamp(*LOGVAR_RANGE))

    def sample(self, generator: torch.Generator, share: Share | None = None) -> torch.Tensor:
        """A draw per row; the rows being ``share``'s of a training batch, the noise of the whole batch is drawn."""
        eps = (share or Share(self.mu.shape[0])).randn(self.mu.shape[1:], generator, self.mu.dtype)
        return self.mu + (0.5 * self.logvar).exp() * eps  # reparameterised (Kingma & Welling, Eq. 10)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """Per sample, summed over every other dimension."""
        return gaussian_log_prob(z, self.mu, self.logvar, event_dims=z.dim() - 1)

    def kl(self, p: "Gaussian") -> torch.Tensor:
        """``KL(self || p)`` per sample, in closed form (summed over every other dimension)."""
        per_dim = 0.5 * (p.logvar - self.logvar + (self.logvar.exp() + (self.mu - p.mu).pow(2)) / p.logvar.exp() - 1)
        return per_dim.flatten(1).sum(1)


def conv(c_in: int, c_out: int, width: int, depth: int) -> nn.Sequential:
    """``depth`` hidden 3x3 convolutions of ``width`` channels with SiLU, resolution kept."""
    sizes = [c_in] + [width] * depth
    body: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        body += [nn.Conv2d(a, b, 3, padding=1), nn.SiLU()]
    return nn.Sequential(*body, nn.Conv2d(sizes[-1], c_out, 3, padding=1))


def upsample(state: torch.Tensor, scale: int) -> torch.Tensor:
    """VDVAE's unpooling between resolutions: nearest-neighbour upsampling of the state."""
    return state if scale == 1 else F.interpolate(state, scale_factor=scale, mode="nearest")


class InputBlock(nn.Module):
    """``x -> h``: the start of the bottom-up pass."""

    def __init__(self, net: Net, channels: int, width: int, depth: int) -> None:
        super().__init__()
        self.net = net(channels, width, width, depth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class EncoderBlock(nn.Module):
    """``h -> h'``: a further bottom-up feature, residual when the widths agree; on images,
    average-pooled by ``scale`` (VDVAE's bottom-up downsampling)."""

    def __init__(self, net: Net, in_width: int, width: int, depth: int, scale: int = 1) -> None:
        super().__init__()
        self.net = net(in_width, width, width, depth)
        self.residual = in_width == width
        self.scale = scale

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = h + self.net(h) if self.residual else self.net(h)
        return h if self.scale == 1 else F.avg_pool2d(h, self.scale)


class TopBlock(nn.Module):
    """The top layer: a trainable prior ``N(mu_0, diag exp(logvar_0))`` (initialised at ``N(0, I)``),
    the posterior ``q(z_L | h)`` and the first top-down state ``s = f(z_L)``."""

    def __init__(self, net: Net, feature_width: int, latent: int, width: int, depth: int, spatial: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.prior_mu = nn.Parameter(torch.zeros(latent, *spatial))  # one per position on images
        self.prior_logvar = nn.Parameter(torch.zeros(latent, *spatial))
        self.q = net(feature_width, 2 * latent, width, depth)
        self.state = net(latent, width, width, depth)

    def prior(self, state: torch.Tensor | None, n: int) -> tuple[Gaussian, None]:
        shape = (n, *self.prior_mu.shape)
        return Gaussian(self.prior_mu.expand(shape), self.prior_logvar.clamp(*LOGVAR_RANGE).expand(shape)), None

    def posterior(self, state: torch.Tensor | None, h: torch.Tensor) -> Gaussian:
        return Gaussian.from_params(self.q(h))

    def next_state(self, state: torch.Tensor | None, z: torch.Tensor, extra: None) -> torch.Tensor:
        return self.state(z)


class GenBlock(nn.Module):
    """A generative layer in the Ladder VAE's shape: ``p(z_l | s)``, ``q(z_l | s, h)`` from the
    concatenation of the top-down state and the bottom-up feature, and ``s' = f(s, z_l)``."""

    def __init__(self, net: Net, state_width: int, feature_width: int, latent: int, width: int, depth: int, scale: int = 1) -> None:
        super().__init__()
        self.scale = scale  # images: the state is upsampled by it first
        self.p = net(state_width, 2 * latent, width, depth)
        self.q = net(state_width + feature_width, 2 * latent, width, depth)
        self.state = net(state_width + latent, width, width, depth)

    def prior(self, state: torch.Tensor, n: int) -> tuple[Gaussian, torch.Tensor]:
        state = upsample(state, self.scale)
        return Gaussian.from_params(self.p(state)), state

    def posterior(self, state: torch.Tensor, h: torch.Tensor) -> Gaussian:
        return Gaussian.from_params(self.q(torch.cat([upsample(state, self.scale), h], dim=1)))

    def next_state(self, state: torch.Tensor, z: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
        return self.state(torch.cat([extra, z], dim=1))


class ResidualBlock(nn.Module):
    """VDVAE's top-down block (Child, ICLR 2021, Fig. 3) on vectors: the prior network gives
    ``p(z_l | s)`` and a feature added to the state, the posterior reads ``concat(s, h)``, and the
    state is updated residually, ``s <- s + feature + W z_l``, then ``s <- s + f(s)``. The last
    layer of ``f`` starts at zero, so a deep stack starts near the identity (VDVAE scales such
    layers by ``1/sqrt(depth)`` for the same reason)."""

    def __init__(self, net: Net, width: int, feature_width: int, latent: int, depth: int, scale: int = 1) -> None:
        super().__init__()
        self.latent, self.scale = latent, scale
        self.p = net(width, 2 * latent + width, width, depth)
        self.q = net(width + feature_width, 2 * latent, width, depth)
        self.z_proj = net(latent, width, width, 0)  # one linear map (a 3x3 convolution on images)
        self.res = net(width, width, width, depth)
        nn.init.zeros_(self.res[-1].weight)
        nn.init.zeros_(self.res[-1].bias)

    def prior(self, state: torch.Tensor, n: int) -> tuple[Gaussian, tuple[torch.Tensor, torch.Tensor]]:
        state = upsample(state, self.scale)
        out = self.p(state)
        return Gaussian.from_params(out[:, : 2 * self.latent]), (state, out[:, 2 * self.latent:])

    def posterior(self, state: torch.Tensor, h: torch.Tensor) -> Gaussian:
        return Gaussian.from_params(self.q(torch.cat([upsample(state, self.scale), h], dim=1)))

    def next_state(self, state: torch.Tensor, z: torch.Tensor, extra: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        state, feature = extra  # the upsampled state and the prior network's feature
        state = state + feature + self.z_proj(z)
        return state + self.res(state)


class OutputBlock(nn.Module):
    """The last state -> ``p(x | z) = N(m, diag s^2)``, the variance learned per point (per pixel
    on images, a density of the dequantized pixels in ``[-1, 1]``)."""

    def __init__(self, net: Net, state_width: int, channels: int, width: int, depth: int) -> None:
        super().__init__()
        self.net = net(state_width, 2 * channels, width, depth)

    def forward(self, state: torch.Tensor) -> Gaussian:
        return Gaussian.from_params(self.net(state))
