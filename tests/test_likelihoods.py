"""The VAE's decoder likelihoods against hand computations, and bits per dimension."""
import math

import pytest
import torch

from genlib.data.image_transforms import to_model, to_uint8
from genlib.methods.likelihoods import (HALF_BIN, Bernoulli, DiscretizedLogistic, Gaussian, bits_per_dim,
                                        level_centres, likelihood)

LEVELS = torch.arange(256, dtype=torch.float64)
CENTRES = (2 * LEVELS + 1) / 256 - 1


def test_parameters_per_dimension():
    assert likelihood("gaussian", 3, learned_var=True).params_per_dim == 2
    assert likelihood("gaussian", 3, learned_var=False).params_per_dim == 1
    assert likelihood("bernoulli", 3).params_per_dim == 1
    assert likelihood("discretized_logistic", 3).params_per_dim == 2


def test_gaussian_matches_torch_normal_over_an_image():
    g = torch.Generator().manual_seed(0)
    x, mean, logvar = (torch.randn(4, 2, 5, 5, generator=g) for _ in range(3))
    lik = Gaussian(3, learned=True, std=0.1)
    expected = torch.distributions.Normal(mean, (0.5 * logvar).exp()).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(lik.log_prob(x, torch.cat([mean, logvar], dim=1)), expected, atol=1e-4)
    fixed = Gaussian(3, learned=False, std=0.3)
    expected = torch.distributions.Normal(mean, 0.3).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(fixed.log_prob(x, mean), expected, atol=1e-4)


def test_bernoulli_is_minus_the_cross_entropy_on_pixel_probabilities():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 1, 4, 4, generator=g) * 2 - 1
    logits = torch.randn(3, 1, 4, 4, generator=g)
    p, q = (x + 1) / 2, torch.sigmoid(logits)
    expected = (p * q.log() + (1 - p) * (1 - q).log()).flatten(1).sum(1)
    assert torch.allclose(Bernoulli(3).log_prob(x, logits), expected, atol=1e-5)
    draws = Bernoulli(3).sample(logits, g)
    assert set(draws.unique().tolist()) <= {-1.0, 1.0}


@pytest.mark.parametrize("loc, scale", [(0.3, 0.2), (-0.999, 0.01), (1.7, 0.05), (0.0, 3.0), (0.5, 1e-3)])
def test_discretized_logistic_masses_sum_to_one(loc, scale):
    lik = DiscretizedLogistic(1)
    out = torch.tensor([[loc, math.log(scale)]], dtype=torch.float64).expand(256, 2)
    masses = lik.log_prob(CENTRES[:, None], out).exp()
    assert abs(float(masses.sum()) - 1) < 1e-9


def test_discretized_logistic_bins_are_sigmoid_differences():
    # Salimans et al. 2017, Eq. 2, in [-1, 1]: bin k spans [c_k - 1/256, c_k + 1/256).
    loc, scale = 0.1, 0.07
    out = torch.tensor([[loc, math.log(scale)]], dtype=torch.float64).expand(256, 2)
    got = DiscretizedLogistic(1).log_prob(CENTRES[:, None], out).exp()
    cdf = lambda v: torch.sigmoid((v - loc) / scale)  # noqa: E731
    expected = cdf(CENTRES + HALF_BIN) - cdf(CENTRES - HALF_BIN)
    expected[0], expected[-1] = cdf(CENTRES[0] + HALF_BIN), 1 - cdf(CENTRES[-1] - HALF_BIN)
    assert torch.allclose(got, expected, rtol=1e-9, atol=1e-15)


def test_discretized_logistic_reads_the_level_whatever_the_dequantization():
    # The likelihood of a dequantized value is the likelihood of its 8-bit level.
    images = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    g = torch.Generator().manual_seed(0)
    lik = DiscretizedLogistic(3)
    out = torch.cat([torch.zeros(1, 1, 16, 16), torch.full((1, 1, 16, 16), -2.0)], dim=1)
    at_levels = lik.log_prob(to_model(images, g, "none"), out)
    assert torch.equal(at_levels, lik.log_prob(to_model(images, g, "uniform"), out))
    assert torch.equal(level_centres(to_model(images, g, "uniform")).double().flatten(), CENTRES)
    draws = lik.sample(out.expand(8, -1, -1, -1), g)
    assert torch.equal(level_centres(draws), draws) and torch.equal(to_uint8(level_centres(draws)), to_uint8(draws))


def test_bits_per_dim_of_uniform_models_is_eight():
    dims = 784
    # 256 equally likely levels: D ln 256 nats.
    assert bits_per_dim(dims * math.log(256), dims, discrete=True) == pytest.approx(8.0, abs=1e-12)
    # The uniform density on [-1, 1]^D (1/2 per dimension) on uniformly dequantized levels: the
    # change of variables to [0, 256) adds D ln 128, giving 8 bits again.
    assert bits_per_dim(dims * math.log(2), dims, discrete=False) == pytest.approx(8.0, abs=1e-12)


def test_discretized_logistic_with_a_wide_scale_is_nearly_uniform():
    # Scale 100 against a range of 2: the density is nearly flat there, so the interior bins hold
    # nearly equal masses, and each edge bin holds its tail, sigmoid(-(1 - 2/256) / 100).
    lik = DiscretizedLogistic(1)
    out = torch.tensor([[0.0, math.log(100.0)]], dtype=torch.float64).expand(256, 2)
    log_p = lik.log_prob(CENTRES[:, None], out)
    interior = log_p[1:-1]
    assert float(interior.max() - interior.min()) < 1e-4
    tail = 1 / (1 + math.exp((1 - 2 * HALF_BIN) / 100.0))  # sigmoid(-(1 - 2/256) / 100)
    assert float(log_p[0].exp()) == pytest.approx(tail) and float(log_p[-1].exp()) == pytest.approx(tail)
