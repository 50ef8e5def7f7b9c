"""The VAE's decoder likelihoods ``p(x | decoder output)``, by name (``vae.likelihood``).

The decoder outputs ``params_per_dim`` numbers for every data dimension, stacked along the feature
axis (the last axis of points, the channel axis of images): for the Gaussian the mean, then the
log-variance when it is learned; for the Bernoulli one logit; for the discretized logistic the
location, then the log-scale. Each likelihood gives ``log p(x | out)`` summed over the dimensions
of one data point (``event_dims`` trailing axes, so a leading axis of importance samples
broadcasts), a draw from it, and its mean.

Data reach the model in ``[-1, 1]``:

* ``gaussian``: a density on the dequantized values; on images its negative log-likelihood is
  turned into bits per dimension with the change of variables of :func:`bits_per_dim`.
* ``bernoulli``: ``(x + 1) / 2`` in ``[0, 1]`` is read as the probability of a pixel being on (the
  usual approximation for grey levels, as in Kingma & Welling's MNIST experiments: it is not a
  normalised distribution over grey levels, so no bits per dimension are given for it). Points in
  the plane are not in ``[0, 1]``: the VAE refuses it on them.
* ``discretized_logistic``: a probability mass on the 256 levels of 8-bit images (Salimans et al.,
  PixelCNN++, ICLR 2017, Eq. 2, one logistic per sub-pixel rather than their mixture, as the IAF
  VAE of Kingma et al., NeurIPS 2016). The levels are those of
  :func:`genlib.data.image_transforms.to_uint8`: level ``k`` is the bin
  ``[k/128 - 1, (k+1)/128 - 1)`` of width ``2/256`` and centre ``(2k + 1)/256 - 1``, so whatever
  dequantization the data went through (none or uniform), the level is read back exactly. The
  edge bins reach ``-inf`` and ``+inf`` so the 256 masses sum to 1.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from genlib.data.image_transforms import to_uint8

LOG_2PI = math.log(2 * math.pi)
LOGVAR_RANGE = (-12.0, 6.0)  # the learned decoder variance stays in [6e-6, 400]: no collapse onto a point
LOG_SCALE_MIN = -7.0  # the logistic's log-scale floor, PixelCNN++'s (their code's ``min=-7.``)
LEVELS = 256
HALF_BIN = 1.0 / LEVELS  # half the width 2/256 of one level's bin in [-1, 1]
UINT8_SCALE = 128.0  # x_model = y / 128 - 1 for y = level + U[0, 1) in [0, 256) (image_transforms.to_model)
LIKELIHOODS = ("gaussian", "bernoulli", "discretized_logistic")


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor, event_dims: int = 1) -> torch.Tensor:
    """``log N(x; mean, diag exp(logvar))`` summed over the last ``event_dims`` dimensions."""
    return -0.5 * ((x - mean).pow(2) / logvar.exp() + logvar + LOG_2PI).flatten(-event_dims).sum(-1)


def level_centres(x: torch.Tensor) -> torch.Tensor:
    """Each value replaced by the centre ``(2k + 1)/256 - 1`` of the 8-bit level ``k`` it lies in."""
    return (2 * to_uint8(x).to(x.dtype) + 1) / LEVELS - 1


def bits_per_dim(nll: float, dims: int, discrete: bool) -> float:
    """Nats per data point to bits per dimension of the 8-bit data.

    A discrete likelihood is a mass on the levels already: ``nll / (D ln 2)``. A density on
    uniformly dequantized data in ``[-1, 1]`` first moves to the level scale ``y = 128 (x + 1)`` in
    ``[0, 256)``, where ``p_Y(y) = p(x) / 128^D``, so ``-log p_Y = nll + D ln 128``; that bounds the
    codelength of the levels from above (Theis, van den Oord & Bethge, ICLR 2016, Sec. 3.1).
    """
    shift = 0.0 if discrete else dims * math.log(UINT8_SCALE)
    return (nll + shift) / (dims * math.log(2))


class Likelihood:
    """Base: ``event_dims`` trailing axes make one data point (1 for points, 3 for images)."""

    name = ""
    params_per_dim = 1
    discrete = False  # a probability mass on the 256 levels (no change of variables in bits/dim)

    def __init__(self, event_dims: int) -> None:
        self.event_dims = event_dims

    def split(self, out: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return out.chunk(self.params_per_dim, dim=-self.event_dims)

    def total(self, per_dim: torch.Tensor) -> torch.Tensor:
        return per_dim.flatten(-self.event_dims).sum(-1)

    def observe(self, x: torch.Tensor) -> torch.Tensor:
        """The data as this likelihood reads them (the encoder sees the same)."""
        return x

    def log_prob(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def sample(self, out: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def mean(self, out: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class Gaussian(Likelihood):
    """``N(m, diag s^2)``: ``log s^2`` from the decoder (``learned``) or ``2 log std`` for all."""

    name = "gaussian"

    def __init__(self, event_dims: int, learned: bool, std: float) -> None:
        super().__init__(event_dims)
        self.learned, self.std = learned, std
        self.params_per_dim = 2 if learned else 1

    def mean_logvar(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.learned:
            mean, logvar = self.split(out)
            return mean, logvar.clamp(*LOGVAR_RANGE)
        return out, torch.full_like(out, 2 * math.log(self.std))

    def log_prob(self, x, out):
        return gaussian_log_prob(x, *self.mean_logvar(out), self.event_dims)

    def sample(self, out, generator):
        mean, logvar = self.mean_logvar(out)
        return mean + (0.5 * logvar).exp() * torch.randn(mean.shape, generator=generator, device=mean.device)

    def mean(self, out):
        return self.mean_logvar(out)[0]


class Bernoulli(Likelihood):
    """``Bernoulli(sigmoid(logit))`` per dimension, against the probabilities ``(x + 1) / 2``;
    ``log p`` is minus the binary cross-entropy. Draws are ``-1`` or ``1``."""

    name = "bernoulli"

    def log_prob(self, x, out):
        target = ((x + 1) / 2).expand_as(out)
        return -self.total(F.binary_cross_entropy_with_logits(out, target, reduction="none"))

    def sample(self, out, generator):
        return 2 * torch.bernoulli(torch.sigmoid(out), generator=generator) - 1

    def mean(self, out):
        return 2 * torch.sigmoid(out) - 1


class DiscretizedLogistic(Likelihood):
    """A logistic of location ``mu`` and scale ``s`` integrated over each level's bin
    (Salimans et al., 2017, Eq. 2): ``P(k) = sigmoid((c_k + h - mu)/s) - sigmoid((c_k - h - mu)/s)``
    with ``c_k`` the bin centre, ``h = 1/256``, and the first and last bins open to -inf and +inf."""

    name = "discretized_logistic"
    params_per_dim = 2
    discrete = True

    def loc_log_scale(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        loc, log_scale = self.split(out)
        return loc, log_scale.clamp(min=LOG_SCALE_MIN)

    def observe(self, x):
        return level_centres(x)

    def log_prob(self, x, out):
        loc, log_scale = self.loc_log_scale(out)
        centre = level_centres(x)
        inv_s = torch.exp(-log_scale)
        upper, lower = (centre + HALF_BIN - loc) * inv_s, (centre - HALF_BIN - loc) * inv_s
        # log(sigmoid(a) - sigmoid(b)) = log sigmoid(a) + log sigmoid(-b) + log(1 - e^(b - a)),
        # finite wherever the bin has mass; the edge bins keep only one side.
        log_cdf_upper, log_sf_lower = -F.softplus(-upper), -F.softplus(lower)
        log_width = torch.log(-torch.expm1(-2 * HALF_BIN * inv_s))
        interior = log_cdf_upper + log_sf_lower + log_width
        first, last = centre < -1 + 2 * HALF_BIN, centre > 1 - 2 * HALF_BIN
        return self.total(torch.where(first, log_cdf_upper, torch.where(last, log_sf_lower, interior)))

    def sample(self, out, generator):
        """A logistic draw ``mu + s log(u / (1 - u))``, snapped to its level's centre."""
        loc, log_scale = self.loc_log_scale(out)
        u = torch.rand(loc.shape, generator=generator, device=loc.device).clamp(1e-6, 1 - 1e-6)
        return level_centres(loc + log_scale.exp() * (torch.log(u) - torch.log1p(-u)))

    def mean(self, out):
        """The location, clamped to ``[-1, 1]`` (the mean, up to the mass the edge bins gather)."""
        return self.loc_log_scale(out)[0].clamp(-1, 1)


def likelihood(name: str, event_dims: int, learned_var: bool = True, std: float = 0.1) -> Likelihood:
    """The likelihood ``name`` for data points of ``event_dims`` axes (the Gaussian's variance
    learned, or fixed at ``std``)."""
    if name == "gaussian":
        return Gaussian(event_dims, learned_var, std)
    return {"bernoulli": Bernoulli, "discretized_logistic": DiscretizedLogistic}[name](event_dims)
