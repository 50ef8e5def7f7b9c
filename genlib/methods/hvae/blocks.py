"""The blocks a hierarchical VAE is built from, in hVAE's vocabulary: MLPs for flat data, 3x3
convolutions for images (``net`` is :func:`~genlib.nets.dense.dense` or :func:`conv`; features and
latents then carry their channels in dimension 1, at the resolution of the block).

Bottom-up: an ``input`` block maps ``x`` to deterministic features, ``encoder`` blocks map
features to features. Top-down: a ``top`` block holds the trainable top prior ``p(z_L)``,
``gen`` and ``residual`` blocks hold a prior ``p(z_l | z_>l)`` computed from the top-down state
and a posterior ``q(z_l | z_>l, x)`` computed from that state and a bottom-up feature (top-down
inference: Sønderby et al., NeurIPS 2016, Ladder VAE; Kingma et al., NeurIPS 2016, IAF, Sec. 6),
and an ``output`` block maps the last state to the likelihood ``p(x | z)``.

hVAE's further types: ``DualBlock`` (two bottom-up inputs), ``SimpleBlock`` (a deterministic
top-down block), and ``TopBlock`` and ``GenBlock`` without a posterior (``top_simple``,
``gen_prior``: ``z`` drawn from the prior in training too). A latent layer's distribution is a
diagonal :class:`Gaussian` or :class:`Laplace` (``dist``); the output block's is a likelihood of
:mod:`genlib.methods.likelihoods` (:class:`Observation`).

Every latent block answers three calls: ``prior(state, n)``, ``posterior(state, h)`` and
``next_state(state, z, extra)``, ``extra`` being what ``prior`` computed for the state update.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from genlib.methods.likelihoods import LOGVAR_RANGE, Likelihood, gaussian_log_prob
from genlib.methods.own_networks import Share

Net = Callable[[int, int, int, int], nn.Module]  # (in, out, width, depth) -> module


def _mean_logvar(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A block's output split into a distribution's two parameters (mean, clamped log-variance);
    the Gaussian and the Laplace are parametrised alike (``from_params`` of each)."""
    mu, logvar = out.chunk(2, dim=1)
    return mu, logvar.clamp(*LOGVAR_RANGE)


class Gaussian(NamedTuple):
    """A diagonal Gaussian ``N(mu, diag exp(logvar))`` over the last dimension."""

    mu: torch.Tensor
    logvar: torch.Tensor

    from_params = classmethod(lambda cls, out: cls(*_mean_logvar(out)))

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


class Laplace(NamedTuple):
    """A product of Laplace distributions of mean ``mu`` and variance ``exp(logvar)`` (scale
    ``b = sqrt(var / 2)``), parametrised as the Gaussian is, so a block swaps one for the other."""

    mu: torch.Tensor
    logvar: torch.Tensor

    from_params = classmethod(lambda cls, out: cls(*_mean_logvar(out)))

    @property
    def log_b(self) -> torch.Tensor:
        return 0.5 * (self.logvar - LOG_2)

    def sample(self, generator: torch.Generator, share: Share | None = None) -> torch.Tensor:
        """``mu - b sign(u) log(1 - 2|u|)``, ``u ~ U(-1/2, 1/2)``: the inverse CDF, reparameterised
        (the whole batch's ``u`` drawn, as :meth:`Gaussian.sample`)."""
        u = (share or Share(self.mu.shape[0])).rand(self.mu.shape[1:], generator, self.mu.dtype) - 0.5
        u = u.clamp(-0.5 + 1e-7, 0.5 - 1e-7)
        return self.mu - self.log_b.exp() * u.sign() * torch.log1p(-2 * u.abs())

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return (-LOG_2 - self.log_b - (z - self.mu).abs() / self.log_b.exp()).flatten(1).sum(1)

    def kl(self, p: "Laplace") -> torch.Tensor:
        """``KL(self || p)`` in closed form: ``log(b_p/b_q) + |mu_q - mu_p|/b_p + (b_q/b_p)
        exp(-|mu_q - mu_p|/b_q) - 1`` per dimension (Gil, Alajaji & Linder, Inf. Sci. 2013; checked by Monte Carlo in tests/test_hvae_blocks.py)."""
        d = (self.mu - p.mu).abs()
        ratio = (self.log_b - p.log_b).exp()
        per_dim = p.log_b - self.log_b + d / p.log_b.exp() + ratio * torch.exp(-d / self.log_b.exp()) - 1
        return per_dim.flatten(1).sum(1)


DISTS = {"gaussian": Gaussian, "laplace": Laplace}  # hvae.blocks[i].dist
LOG_2 = math.log(2.0)


def conv(c_in: int, c_out: int, width: int, depth: int) -> nn.Sequential:
    """``depth`` hidden 3x3 convolutions of ``width`` channels with SiLU, resolution kept."""
    sizes = [c_in] + [width] * depth
    body: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        body += [nn.Conv2d(a, b, 3, padding=1), nn.SiLU()]
    return nn.Sequential(*body, nn.Conv2d(sizes[-1], c_out, 3, padding=1))


def conv1x1(c_in: int, c_out: int, width: int, depth: int) -> nn.Sequential:
    """``depth`` hidden 1x1 convolutions of ``width`` channels with SiLU: an MLP at every pixel."""
    sizes = [c_in] + [width] * depth
    body: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        body += [nn.Conv2d(a, b, 1), nn.SiLU()]
    return nn.Sequential(*body, nn.Conv2d(sizes[-1], c_out, 1))


def standardize(h: torch.Tensor) -> torch.Tensor:
    """Each point's feature less its mean over all its dimensions, over their standard deviation."""
    dims = tuple(range(1, h.dim()))
    return (h - h.mean(dims, keepdim=True)) / (h.var(dims, keepdim=True, unbiased=False) + 1e-5).sqrt()


TRANSFORMS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {  # graph.TRANSFORMS says what each does
    "identity": lambda h: h, "silu": F.silu, "standardize": standardize,
}


def upsample(state: torch.Tensor, scale: int) -> torch.Tensor:
    """VDVAE's unpooling between resolutions: nearest-neighbour upsampling of the state."""
    return state if scale == 1 else F.interpolate(state, scale_factor=scale, mode="nearest")


class InputBlock(nn.Module):
    """``x -> h``: the start of the bottom-up pass, after the input ``transform``."""

    def __init__(self, net: Net, channels: int, width: int, depth: int, transform: str = "identity") -> None:
        super().__init__()
        self.net = net(channels, width, width, depth)
        self.transform = TRANSFORMS[transform]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.transform(x))


class EncoderBlock(nn.Module):
    """``h -> h'``: a further bottom-up feature, residual when the widths agree; on images,
    average-pooled by ``scale`` (VDVAE's bottom-up downsampling), or with ``dense_side`` (the side
    of a map pooled to 1x1) mapped whole by one linear layer, as a VAE's encoder ends: an average
    of local features forgets where they were, which a digit's shape is made of."""

    def __init__(self, net: Net, in_width: int, width: int, depth: int, scale: int = 1, transform: str = "identity",
                 dense_side: int | None = None) -> None:
        super().__init__()
        self.net = net(in_width, width, width, depth)
        self.residual = in_width == width
        self.scale = scale
        self.transform = TRANSFORMS[transform]
        self.dense = None if dense_side is None else nn.Linear(width * dense_side**2, width)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = self.transform(h)
        h = h + self.net(h) if self.residual else self.net(h)
        if self.dense is not None:
            return self.dense(h.flatten(1))[:, :, None, None]
        return h if self.scale == 1 else F.avg_pool2d(h, self.scale)


class DualBlock(nn.Module):
    """hVAE's ``DualInputBlock``: two features joined, by concatenation or their sum, then
    ``h = f(join)``; bottom-up two features, top-down the state and a block's output above it."""

    def __init__(self, net: Net, in_width: int, in2_width: int, width: int, depth: int, merge: str = "concat") -> None:
        super().__init__()
        self.concat = merge == "concat"
        self.net = net(in_width + in2_width if self.concat else in_width, width, width, depth)

    def forward(self, h: torch.Tensor, h2: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([h, h2], dim=1) if self.concat else h + h2)


class TopBlock(nn.Module):
    """The top layer: a trainable prior ``N(mu_0, diag exp(logvar_0))`` (initialised at ``N(0, I)``;
    or the Laplace of that mean and variance), the posterior ``q(z_L | h)`` and the first top-down
    state ``s = f(z_L)``. Without ``feature_width`` it is hVAE's ``TopSimpleBlock``: the trainable
    prior alone, ``z_L`` drawn from it in training too (no posterior, no KL)."""

    def __init__(self, net: Net, feature_width: int | None, latent: int, width: int, depth: int,
                 spatial: tuple[int, ...] = (), dist: str = "gaussian") -> None:
        super().__init__()
        self.dist = DISTS[dist]
        self.prior_mu = nn.Parameter(torch.zeros(latent, *spatial))  # one per position on images
        self.prior_logvar = nn.Parameter(torch.zeros(latent, *spatial))
        self.q = None if feature_width is None else net(feature_width, 2 * latent, width, depth)
        self.state = net(latent, width, width, depth)

    @property
    def inferred(self) -> bool:
        return self.q is not None

    def prior(self, state: torch.Tensor | None, n: int) -> tuple[Gaussian, None]:
        shape = (n, *self.prior_mu.shape)
        return self.dist(self.prior_mu.expand(shape), self.prior_logvar.clamp(*LOGVAR_RANGE).expand(shape)), None

    def posterior(self, state: torch.Tensor | None, h: torch.Tensor) -> Gaussian:
        return self.dist.from_params(self.q(h))

    def next_state(self, state: torch.Tensor | None, z: torch.Tensor, extra: None) -> torch.Tensor:
        return self.state(z)


def joined(state: torch.Tensor, h: torch.Tensor, concat: bool) -> torch.Tensor:
    """What a posterior reads: ``concat(s, h)`` (the Ladder VAE's, VDVAE's) or ``s + h``."""
    return torch.cat([state, h], dim=1) if concat else state + h


class GenBlock(nn.Module):
    """A generative layer in the Ladder VAE's shape: ``p(z_l | s)``, ``q(z_l | s, h)`` from the
    concatenation (or sum) of the top-down state and the bottom-up feature, and ``s' = f(s, z_l)``.
    Without ``feature_width`` it is hVAE's ``SimpleGenBlock``: the prior alone, ``z_l`` drawn from
    it in training too (no posterior, no KL)."""

    def __init__(self, net: Net, state_width: int, feature_width: int | None, latent: int, width: int, depth: int,
                 scale: int = 1, dist: str = "gaussian", concat_posterior: bool = True) -> None:
        super().__init__()
        self.scale, self.dist, self.concat = scale, DISTS[dist], concat_posterior  # images: the state is upsampled by scale first
        self.p = net(state_width, 2 * latent, width, depth)
        q_in = None if feature_width is None else state_width + feature_width if concat_posterior else state_width
        self.q = None if q_in is None else net(q_in, 2 * latent, width, depth)
        self.state = net(state_width + latent, width, width, depth)

    @property
    def inferred(self) -> bool:
        return self.q is not None

    def prior(self, state: torch.Tensor, n: int) -> tuple[Gaussian, torch.Tensor]:
        state = upsample(state, self.scale)
        return self.dist.from_params(self.p(state)), state

    def posterior(self, state: torch.Tensor, h: torch.Tensor) -> Gaussian:
        return self.dist.from_params(self.q(joined(upsample(state, self.scale), h, self.concat)))

    def next_state(self, state: torch.Tensor, z: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
        return self.state(torch.cat([extra, z], dim=1))


class ResidualBlock(nn.Module):
    """VDVAE's top-down block (Child, ICLR 2021, Fig. 3) on vectors: the prior network gives
    ``p(z_l | s)`` and a feature added to the state, the posterior reads ``concat(s, h)``, and the
    state is updated residually, ``s <- s + feature + W z_l``, then ``s <- s + f(s)``. The last
    layer of ``f`` starts at zero, so a deep stack starts near the identity (VDVAE scales such
    layers by ``1/sqrt(depth)`` for the same reason)."""

    inferred = True

    def __init__(self, net: Net, width: int, feature_width: int, latent: int, depth: int, scale: int = 1,
                 dist: str = "gaussian", concat_posterior: bool = True) -> None:
        super().__init__()
        self.latent, self.scale, self.dist, self.concat = latent, scale, DISTS[dist], concat_posterior
        self.p = net(width, 2 * latent + width, width, depth)
        self.q = net(width + feature_width if concat_posterior else width, 2 * latent, width, depth)
        self.z_proj = net(latent, width, width, 0)  # one linear map (a 3x3 convolution on images)
        self.res = net(width, width, width, depth)
        nn.init.zeros_(self.res[-1].weight)
        nn.init.zeros_(self.res[-1].bias)

    def prior(self, state: torch.Tensor, n: int) -> tuple[Gaussian, tuple[torch.Tensor, torch.Tensor]]:
        state = upsample(state, self.scale)
        out = self.p(state)
        return self.dist.from_params(out[:, : 2 * self.latent]), (state, out[:, 2 * self.latent:])

    def posterior(self, state: torch.Tensor, h: torch.Tensor) -> Gaussian:
        return self.dist.from_params(self.q(joined(upsample(state, self.scale), h, self.concat)))

    def next_state(self, state: torch.Tensor, z: torch.Tensor, extra: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        state, feature = extra  # the upsampled state and the prior network's feature
        state = state + feature + self.z_proj(z)
        return state + self.res(state)


class SimpleBlock(nn.Module):
    """hVAE's ``SimpleBlock`` on the top-down side: a deterministic ``s' = f(s)``, residual when the
    widths agree. On images it upsamples the state by ``scale`` first and adds a learned constant
    per position at the new resolution (VDVAE's ``bias_xs``, Child 2021, code): a state upsampled
    from 1x1 is the same at every position, and the constant tells them apart."""

    def __init__(self, net: Net, in_width: int, width: int, depth: int, scale: int = 1, spatial: tuple[int, ...] = (),
                 dense: bool = False) -> None:
        super().__init__()
        self.scale = scale
        self.net = net(in_width, width, width, depth)
        self.residual = in_width == width
        self.bias = nn.Parameter(torch.zeros(in_width, *spatial)) if spatial else None
        # unpool: dense: a 1x1 state mapped to the whole map by one linear layer (a VAE decoder's start)
        self.unpool = nn.Linear(in_width, in_width * scale**2) if dense else None

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        if self.unpool is not None:
            state = self.unpool(state.flatten(1)).view(state.shape[0], -1, self.scale, self.scale)
        else:
            state = upsample(state, self.scale)
        if self.bias is not None:
            state = state + self.bias
        return state + self.net(state) if self.residual else self.net(state)


class Observation(NamedTuple):
    """``p(x | z)``: a likelihood of :mod:`genlib.methods.likelihoods` at the output block's
    parameters, with the calls a latent layer's distribution answers (``mu``, ``sample``, ``log_prob``)."""

    lik: Likelihood
    out: torch.Tensor

    @property
    def mu(self) -> torch.Tensor:
        return self.lik.mean(self.out)

    def sample(self, generator: torch.Generator) -> torch.Tensor:
        return self.lik.sample(self.out, generator)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.lik.log_prob(x, self.out)


class OutputBlock(nn.Module):
    """The last state -> ``p(x | z)`` by ``hvae.likelihood``: a Gaussian with its variance learned
    per point (per pixel on images, a density of the dequantized pixels in ``[-1, 1]``), or on
    images the discretized logistic (a mass on the 256 levels) or the Bernoulli."""

    def __init__(self, net: Net, state_width: int, channels: int, width: int, depth: int, lik: Likelihood) -> None:
        super().__init__()
        self.lik = lik
        self.net = net(state_width, lik.params_per_dim * channels, width, depth)

    def forward(self, state: torch.Tensor) -> Observation:
        return Observation(self.lik, self.net(state))
