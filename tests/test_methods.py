"""DDPM and DLPM: agreement at alpha = 2, exactness with an oracle denoiser, shapes, seeds."""
import math

import pytest
import torch

from genlib.methods.base import SampleOptions
from genlib.methods.ddpm import DDPM, DDPMParams
from genlib.methods.dlpm import DLPM, DLPMParams, aggregate
from genlib.methods.losses import per_sample_loss
from genlib.methods.schedules import StableSchedule
from genlib.nets.mlp import MLP


def gen(seed):
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return MLP((2,)).eval()


def test_dlpm_at_alpha_two_loss_equals_ddpm(net):
    x0 = torch.randn(256, 2, generator=gen(1))
    ddpm = DDPM(DDPMParams(diffusion_steps=50))
    dlpm = DLPM(DLPMParams(alpha=2.0, diffusion_steps=50, loss="squared_l2"))
    assert torch.allclose(ddpm.loss(net, x0, gen(2)), dlpm.loss(net, x0, gen(2)), rtol=1e-6)


@pytest.mark.parametrize("pair", [("ddpm", "dlpm"), ("ddim", "dlim")])
@pytest.mark.parametrize("steps", [50, 10])
def test_dlpm_at_alpha_two_samples_equal_ddpm(net, pair, steps):
    ddpm = DDPM(DDPMParams(diffusion_steps=50))
    dlpm = DLPM(DLPMParams(alpha=2.0, diffusion_steps=50))
    a = ddpm.sample(net, (300, 2), steps, gen(3), SampleOptions(sampler=pair[0]))
    b = dlpm.sample(net, (300, 2), steps, gen(3), SampleOptions(sampler=pair[1]))
    assert torch.allclose(a, b, rtol=1e-4, atol=1e-4)


class Oracle(torch.nn.Module):
    """The exact noise predictor for data that is a single point ``c``."""

    def __init__(self, c, steps, alpha):
        super().__init__()
        self.c, self.sch = c, StableSchedule(steps, alpha)

    def forward(self, x, t):
        idx = torch.round(t * self.sch.steps).long()
        bg = self.sch.bar_gamma[idx].float()[:, None]
        bs = self.sch.bar_sigma[idx].float()[:, None]
        return (x - bg * self.c) / bs


@pytest.mark.parametrize("sampler", ["dlpm", "dlim"])
@pytest.mark.parametrize("alpha", [1.5, 1.8, 2.0])
@pytest.mark.parametrize("steps", [100, 10])
def test_oracle_denoiser_recovers_point_mass(sampler, alpha, steps):
    # With the exact predictor every reverse step lands on bar_gamma_{t-1} c (+ its noise), and the
    # last one (Gamma_1 = 1, bar_sigma_0 = 0) on c itself: a check of every index in the samplers.
    c = torch.tensor([1.5, -0.5])
    method = DLPM(DLPMParams(alpha=alpha, diffusion_steps=100))
    out = method.sample(Oracle(c, steps, alpha), (500, 2), steps, gen(4), SampleOptions(sampler=sampler, clamp_a=50.0))
    assert torch.allclose(out, c.expand_as(out), atol=1e-3)


def test_ddpm_gaussian_data_exact_predictor_gives_right_law():
    # Data N(m, s^2 I): E[eps | x_t] = bs (x_t - bg m) / (bg^2 s^2 + bs^2), so each ancestral step is
    # x <- k_t x + const + sqrt(beta_tilde_t) z and the output variance follows the recursion
    # v <- k_t^2 v + beta_tilde_t from v_T = 1 - alpha_bar_T. (It is below s^2: plugging in
    # E[x0 | x_t] ignores the uncertainty of x0.) n = 20000 gives relative std errors near 1%.
    m, s, n, T = torch.tensor([2.0, -1.0]), 0.5, 20_000, 100
    sch = StableSchedule(T, 2.0)
    bg, bs = sch.bar_gamma, sch.bar_sigma

    def predictor(x, t):
        idx = torch.round(t * T).long()
        g, h = bg[idx].float()[:, None], bs[idx].float()[:, None]
        return h * (x - g * m) / (g**2 * s**2 + h**2)

    v = float(bs[T] ** 2)
    for t in range(T, 0, -1):
        beta = 1 - (bg[t] / bg[t - 1]) ** 2
        k = (1 - beta / (bg[t] ** 2 * s**2 + bs[t] ** 2)) / (1 - beta).sqrt()
        v = float(k**2 * v + (bs[t - 1] ** 2 / bs[t] ** 2 * beta if t > 1 else 0.0))
    out = DDPM(DDPMParams(T)).sample(predictor, (n, 2), T, gen(5))
    assert torch.allclose(out.mean(0), m, atol=5 * s / math.sqrt(n))
    assert torch.allclose(out.var(0), torch.full((2,), v), rtol=5 * math.sqrt(2 / n))
    assert 0.85 * s**2 < v < s**2


@pytest.mark.parametrize("sampler", ["dlpm", "dlim"])
def test_sampling_shape_and_seed(net, sampler):
    method = DLPM(DLPMParams())
    opt = SampleOptions(sampler=sampler, eta=0.5 if sampler == "dlim" else 0.0)
    a = method.sample(net, (64, 2), 20, gen(6), opt)
    b = method.sample(net, (64, 2), 20, gen(6), opt)
    c = method.sample(net, (64, 2), 20, gen(7), opt)
    assert a.shape == (64, 2) and torch.equal(a, b) and not torch.equal(a, c)


def test_dlim_eta_zero_is_deterministic_given_start(net):
    # eta = 0: the only randomness is the starting noise, so the same seed gives the same path
    # and the sampler draws nothing after the start.
    method = DLPM(DLPMParams())
    g = gen(8)
    method.sample(net, (16, 2), 10, g, SampleOptions(sampler="dlim"))
    state_after = g.get_state()
    g2 = gen(8)
    from genlib.stable import sample_sas

    sample_sas(1.8, (16, 2), g2, a_scale=1.0)
    assert torch.equal(state_after, g2.get_state())


@pytest.mark.parametrize("loss", ["l2", "squared_l2", "smooth_l1"])
@pytest.mark.parametrize("mc", ["mean", "median_of_means"])
def test_dlpm_losses_finite_and_differentiable(net, loss, mc):
    method = DLPM(DLPMParams(loss=loss, monte_carlo=mc))
    x0 = torch.randn(128, 2, generator=gen(9))
    value = method.loss(net, x0, gen(10))
    assert value.ndim == 0 and torch.isfinite(value)


@pytest.mark.parametrize("beta", [1.0, 3.0])
def test_smooth_l1_is_quadratic_below_huber_beta_and_linear_above(beta):
    # Huber: d^2 / (2 beta) for |d| < beta, |d| - beta / 2 beyond; one value per sample, the mean
    # over coordinates.
    diff = torch.tensor([[0.5, -0.5], [10.0, -10.0]])
    got = per_sample_loss(diff, "smooth_l1", beta)
    assert torch.allclose(got, torch.tensor([0.25 / (2 * beta), 10.0 - beta / 2]))
    # dlpm.huber_beta reaches the method's batch loss
    method = DLPM(DLPMParams(huber_beta=beta))
    assert torch.allclose(method.batch_loss(diff, torch.zeros_like(diff)), got.mean())


def test_median_of_means_resists_one_outlier():
    losses = torch.ones(64)
    losses[0] = 1e6
    assert aggregate(losses, "median_of_means", 8) == 1.0
    assert aggregate(losses, "mean", 8) > 1e4


def test_non_isotropic_noise_has_independent_coordinates():
    method = DLPM(DLPMParams(isotropic=False))
    a = method.draw_a((1000, 2), gen(11), None)
    assert a.shape == (1000, 2) and not torch.equal(a[:, 0], a[:, 1])
