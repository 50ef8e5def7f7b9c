"""DLPM's reverse samplers run with known denoisers, so that any drift is the sampler's own.

Single point ``x0 = c``: ``E[eps | x_t] = (x_t - bar_gamma_t c) / bar_sigma_t`` exactly, whatever the
heavy-tailed ``A``; both samplers must then end on ``c`` and, step by step, ``x_t - bar_gamma_t c``
must be symmetric about 0 (conditionally on ``A_{1:T}`` it is ``N(0, Sigma_t)``). Gaussian data
``x0 ~ N(mu, s^2 I)``: ``E[eps | x_t]`` is a posterior average over ``A`` (importance weights on
prior draws), and the samples' mean must be ``mu`` (the process is symmetric about it).
"""
import math

import pytest
import torch

from genlib.methods.base import SampleOptions
from genlib.methods.dlpm import DLPM, DLPMParams
from genlib.stable import sample_skewed_levy

ALPHA, STEPS, N = 1.8, 25, 2000


def method():
    return DLPM(DLPMParams(alpha=ALPHA, diffusion_steps=1000))


class Recorded:
    """A denoiser ``eps(x, t_index)`` as a network of ``(x, time)``, keeping every input it sees."""

    def __init__(self, sch, eps):
        self.sch, self.eps, self.trace = sch, eps, []

    def __call__(self, x, time):
        t = int(round(float(time[0]) * self.sch.steps))
        self.trace.append((t, x.clone()))
        return self.eps(x, t)


def point_oracle(sch, c):
    return Recorded(sch, lambda x, t: (x - float(sch.bar_gamma[t]) * c) / float(sch.bar_sigma[t]))


def gaussian_oracle(sch, mu, s, k=4000):
    a = sample_skewed_levy(ALPHA, (k,), torch.Generator().manual_seed(1), a_scale=1.0).double()

    def eps(x, t):
        g, sg = float(sch.bar_gamma[t]), float(sch.bar_sigma[t])
        r = (x.double() - g * mu).flatten(1)
        v = g**2 * s**2 + sg**2 * a  # Var(x_t | a) per coordinate
        w = torch.softmax(-0.5 * r.shape[1] * v.log()[None] - 0.5 * (r**2).sum(1, keepdim=True) / v[None], 1)
        return ((w * (sg * a / v)[None]).sum(1, keepdim=True) * r).reshape(x.shape).float()

    return Recorded(sch, eps)


def digit_like() -> torch.Tensor:
    c = torch.full((1, 4, 4), -0.8)
    c[0, 1:3, 1:3] = 0.9
    return c


@pytest.mark.parametrize("sampler", ["dlpm", "dlim"])
def test_a_single_point_is_recovered_without_drift(sampler):
    m, c = method(), digit_like()
    net = point_oracle(m.schedule(STEPS, "cpu"), c)
    out = m.sample(net, (N, 1, 4, 4), STEPS, torch.Generator().manual_seed(0), SampleOptions(sampler=sampler))
    assert (out - c).abs().max() < 1e-5
    sch = m.schedule(STEPS, "cpu")
    assert [t for t, _ in net.trace] == list(range(STEPS, 0, -1))
    for t, x in net.trace:
        dev = (x - float(sch.bar_gamma[t]) * c).flatten(1).mean(1)  # each sample's mean-pixel deviation
        # a median of N symmetric draws: within 4 standard errors (1.25 sd / sqrt(N), sd ~ 1.5 MAD)
        assert abs(float(dev.median())) < 4 * 1.25 * 1.5 * float(dev.abs().median()) / math.sqrt(N), t


@pytest.mark.parametrize("sampler", ["dlpm", "dlim"])
def test_clip_x0_leaves_an_exact_denoiser_alone_and_bounds_a_bad_one(sampler):
    m, c = method(), digit_like()
    sch = m.schedule(STEPS, "cpu")
    options = SampleOptions(sampler=sampler, clip_x0=1.0)
    out = m.sample(point_oracle(sch, c), (200, 1, 4, 4), STEPS, torch.Generator().manual_seed(0), options)
    assert (out - c).abs().max() < 1e-5  # c lies in [-1, 1]: clipping changes nothing
    silent = Recorded(sch, lambda x, t: torch.zeros_like(x))  # predicts no noise: x0 = x / bar_gamma
    free = m.sample(silent, (200, 1, 4, 4), STEPS, torch.Generator().manual_seed(0), SampleOptions(sampler=sampler))
    clipped = m.sample(silent, (200, 1, 4, 4), STEPS, torch.Generator().manual_seed(0), options)
    assert free.abs().max() > 10 and clipped.abs().max() <= 1.0 + 1e-6


@pytest.mark.parametrize("sampler", ["dlpm", "dlim"])
def test_gaussian_data_keeps_its_mean(sampler):
    mu, s = -0.5, 0.3
    m = method()
    out = m.sample(gaussian_oracle(m.schedule(STEPS, "cpu"), mu, s), (N, 1, 4, 4), STEPS,
                   torch.Generator().manual_seed(0), SampleOptions(sampler=sampler)).double()
    per_sample = out.flatten(1).mean(1)
    assert abs(float(per_sample.mean()) - mu) < 4 * float(per_sample.std()) / math.sqrt(N)
    # The spread is the samplers' approximation (the network's E[eps | x_t] stands in for
    # E[eps | x_t, A_{1:T}]): with 25 steps, measured 0.254 (dlpm) and 0.280 (dlim) for s = 0.3.
    assert 0.8 * s < float(out.flatten().std()) < 1.05 * s
