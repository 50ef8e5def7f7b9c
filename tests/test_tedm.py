"""t-EDM (Pandey et al., ICLR 2025): the Student-t noise kernel's law, the preconditioning, the limit
nu -> infinity (EDM, with the same generator draws) and the Heun sampler from the Student-t prior,
checked with the exact denoiser of Gaussian data under Student-t noise."""
import math

import pytest
import torch
from scipy import stats

from genlib.config import load
from genlib.errors import ConfigError
from genlib.methods.base import SampleOptions
from genlib.methods.edm import EDM, EDMParams
from genlib.methods.tedm import TEDM, TEDMParams, chi2_over_nu

from test_config import ROOT
from test_edm import ExactF

# A KS test at a fixed seed passes or fails deterministically; 1e-3 is its level, so a correct law
# passes with certainty 0.999 at any seed and the tests below check the wrong laws are rejected.
LEVEL = 1e-3


def unit_noise(m: TEDM, n: int, d: int, seed: int) -> torch.Tensor:
    """``n`` draws of the kernel's unit noise, read back from corrupt at data 0: ``x = sigma n``."""
    y0 = torch.zeros(n, d)
    x_in, c_noise, _ = m.corrupt(y0, torch.Generator().manual_seed(seed))
    sigma = (4 * c_noise).exp()[:, None]
    _, _, c_in, _ = m._scalings(sigma)
    return (x_in / c_in / sigma).double()


@pytest.mark.parametrize("nu", [3.0, 5.0, 12.5])
def test_the_noise_is_multivariate_student_t(nu):
    # 20,000 draws in 2D: each coordinate is t_nu, and |n|^2 / d is F(d, nu), which holds only if one
    # kappa scales both coordinates (the multivariate t of the kernel), not one per coordinate.
    m = TEDM(TEDMParams(nu=nu))
    n = unit_noise(m, 20000, 2, seed=0).numpy()
    for coord in (n[:, 0], n[:, 1]):
        assert stats.kstest(coord, stats.t(nu).cdf).pvalue > LEVEL
    radial = (n**2).sum(1) / 2
    assert stats.kstest(radial, stats.f(2, nu).cdf).pvalue > LEVEL


def test_the_law_tests_reject_what_a_mistake_would_give():
    # At nu = 4 and 20,000 draws: Gaussian noise of the same variance, and coordinates each with
    # their own kappa (d independent t's), fail the tests the kernel's draws pass.
    nu = 4.0
    n = unit_noise(TEDM(TEDMParams(nu=nu)), 20000, 2, seed=0).numpy()
    assert stats.kstest(n[:, 0], stats.norm(scale=math.sqrt(nu / (nu - 2))).cdf).pvalue < LEVEL
    g = torch.Generator().manual_seed(1)
    independent = torch.randn(20000, 2, generator=g, dtype=torch.float64) / chi2_over_nu(
        nu, 40000, g, torch.float64).sqrt().view(20000, 2)
    assert stats.kstest((independent**2).sum(1).numpy() / 2, stats.f(2, nu).cdf).pvalue < LEVEL


def test_kappa_is_chi2_over_nu_and_follows_the_generator():
    k = chi2_over_nu(4.5, 20000, torch.Generator().manual_seed(0), torch.float64)
    assert stats.kstest(k.numpy() * 4.5, stats.chi2(4.5).cdf).pvalue > LEVEL
    assert torch.equal(k, chi2_over_nu(4.5, 20000, torch.Generator().manual_seed(0), torch.float64))


def test_the_prior_is_student_t_at_sigma_max():
    m = TEDM(TEDMParams(nu=4.0, sigma_max=20.0))
    x = m.noise((20000, 3), torch.Generator().manual_seed(0), torch.float64) * 20.0
    assert stats.kstest(x[:, 1].numpy() / 20.0, stats.t(4.0).cdf).pvalue > LEVEL
    assert stats.kstest((x**2).sum(1).numpy() / 3 / 400.0, stats.f(3, 4.0).cdf).pvalue > LEVEL


def test_the_preconditioning_scales_by_the_noise_variance():
    # Table 1 (t-EDM): EDM's scalings at the std sqrt(nu / (nu - 2)) sigma of the noise; c_noise unchanged.
    nu, sd = 3.0, 0.7
    sigma = torch.tensor([0.01, 0.5, 3.0, 80.0], dtype=torch.float64)
    c_skip, c_out, c_in, c_noise = TEDM(TEDMParams(nu=nu, sigma_data=sd))._scalings(sigma)
    var = nu / (nu - 2) * sigma**2
    assert torch.allclose(c_skip, sd**2 / (var + sd**2))
    assert torch.allclose(c_out, var.sqrt() * sd / (var + sd**2).sqrt())
    assert torch.allclose(c_in, 1 / (var + sd**2).sqrt())
    assert torch.allclose(c_noise, sigma.log() / 4)
    # With data of std sigma_d, the network's input and target have unit variance at every level,
    # so over the training levels too (40,000 draws; at nu = 5 the noise has a finite 4th moment but
    # no 8th, so the sample variance converges slowly: a tolerance of 0.1, not a few 1/sqrt(n)).
    m = TEDM(TEDMParams(nu=5.0, sigma_data=sd))
    data = torch.randn(40000, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * sd
    x_in, _, target = m.corrupt(data, torch.Generator().manual_seed(2))
    assert abs(x_in.var().item() - 1.0) < 0.1 and abs(target.var().item() - 1.0) < 0.1


def test_large_nu_gives_edm_targets_and_samples_from_the_same_draws():
    # t-EDM draws EDM's sigma and eps first, then kappa: at nu = 1e8 kappa = 1 +- 1.4e-4 and
    # nu / (nu - 2) = 1 + 2e-8, so the training triple and the Heun samples agree to about 1e-3.
    y0 = torch.randn(4096, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    edm, tedm = EDM(EDMParams(sigma_data=0.5)), TEDM(TEDMParams(sigma_data=0.5, nu=1e8))
    ours = tedm.corrupt(y0, torch.Generator().manual_seed(0))
    theirs = edm.corrupt(y0, torch.Generator().manual_seed(0))
    assert torch.equal(ours[1], theirs[1])
    for a, b in (ours[0], theirs[0]), (ours[2], theirs[2]):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-3)
    # A small t (nu = 3) is not within that tolerance: the comparison can tell the two apart.
    heavy = TEDM(TEDMParams(sigma_data=0.5, nu=3.0)).corrupt(y0, torch.Generator().manual_seed(0))
    assert not torch.allclose(heavy[0], theirs[0], rtol=1e-3, atol=1e-3)
    net_t, net_e = ExactF(tedm, s=0.5, mean=1.0), ExactF(edm, s=0.5, mean=1.0)
    x_t = tedm.sample(net_t, (2000, 2), 18, torch.Generator().manual_seed(1))
    x_e = edm.sample(net_e, (2000, 2), 18, torch.Generator().manual_seed(1))
    assert (x_t - x_e).abs().max().item() < 1e-3


class ExactStudentF(torch.nn.Module):
    """The network ``F`` whose denoiser is exact for Gaussian data ``N(mean, s^2 I_d)`` under the
    Student-t kernel: given ``kappa``, ``x | y ~ N(y, sigma^2 / kappa I)``, so
    ``D(x; sigma) = mean + E[s^2 / (s^2 + sigma^2 / kappa) | x] (x - mean)``, the expectation over the
    posterior ``p(kappa | x)``, proportional to ``p(kappa) N(x; mean, (s^2 + sigma^2 / kappa) I_d)``,
    integrated by the trapezoid rule in ``ln kappa`` (accurate to far below the tests' tolerances:
    the integrand is smooth on a scale of about 1 in ``ln kappa`` and the grid step is 0.115)."""

    def __init__(self, method: TEDM, s: float, mean: float = 0.0) -> None:
        super().__init__()
        self.method, self.s, self.mean, self.calls = method, s, mean, 0
        nu = method.params.nu
        self.kappa = torch.logspace(-8, 2, 201, dtype=torch.float64)  # base 10: ln-step 0.115
        # ln of the chi^2_nu / nu density of kappa times kappa (the measure d ln kappa), up to a constant.
        self.log_prior = (nu / 2) * self.kappa.log() - nu * self.kappa / 2

    def forward(self, x_in, c_noise):
        self.calls += 1
        x_in, c_noise = x_in.double(), c_noise.double()
        sigma = (4 * c_noise).exp().view(-1, *([1] * (x_in.dim() - 1)))
        c_skip, c_out, c_in, _ = self.method._scalings(sigma)
        x = x_in / c_in
        d = x[0].numel()
        r2 = (x - self.mean).flatten(1).pow(2).sum(1, keepdim=True)  # (B, 1)
        var = self.s**2 + sigma.view(-1, 1) ** 2 / self.kappa  # (B, K)
        log_w = self.log_prior - d / 2 * var.log() - r2 / (2 * var)
        w = torch.softmax(log_w, dim=1)
        shrink = (w * self.s**2 / var).sum(1).view(sigma.shape)
        den = self.mean + shrink * (x - self.mean)
        return ((den - c_skip * x) / c_out).float()


@pytest.mark.parametrize("nu", [3.0, 6.0])
def test_heun_from_the_student_t_prior_returns_the_data_law_with_the_exact_denoiser(nu):
    # Gaussian data N(1, 0.5^2) in 2D, 100 steps from sigma_max = 80, 6,000 samples. The exact ODE
    # carries t_2(y, 80^2 I, nu) (y the data) to the data; the sampler starts at t_2(0, 80^2 I, nu),
    # which differs by the data's offset 1 and spread 0.5 over 80. Standard errors: mean 0.5 /
    # sqrt(12000) = 0.0046, std 0.5 / sqrt(24000) = 0.0032. The heavy-tailed start must not leak into
    # the samples: their excess kurtosis is 0 within 4 standard errors (sqrt(24 / 12000) = 0.045).
    m = TEDM(TEDMParams(sigma_data=0.5, nu=nu))
    net = ExactStudentF(m, s=0.5, mean=1.0)
    x = m.sample(net, (6000, 2), 100, torch.Generator().manual_seed(0)).double()
    assert abs(x.mean().item() - 1.0) < 4 * 0.0046 + 0.0125
    assert abs(x.std().item() - 0.5) < 4 * 0.0032 + 0.004
    assert abs(stats.kurtosis(x.flatten().numpy())) < 4 * 0.045
    assert net.calls == m.network_evals(100, SampleOptions()) == 2 * 100 - 1
    # Sampled with EDM's Gaussian denoiser instead, the same prior leaves heavy tails behind.
    wrong = m.sample(ExactF(m, s=0.5, mean=1.0), (6000, 2), 100, torch.Generator().manual_seed(0)).double()
    assert stats.kurtosis(wrong.flatten().numpy()) > 10 * 0.045


def test_tedm_settings_are_checked_at_the_door():
    for bad in (2.0, 1.5, -3.0):
        with pytest.raises(ConfigError, match=r"tedm\.nu .*a finite number > 2") as err:
            load(ROOT / "params.yaml", {"method": "tedm", "tedm.nu": bad})
        assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="tedm.nu"):
        load(ROOT / "params.yaml", {"method": "tedm", "tedm.nu": "inf"})
    with pytest.raises(ConfigError, match="tedm.sigma_min"):
        load(ROOT / "params.yaml", {"method": "tedm", "tedm.sigma_min": 100.0})
    with pytest.raises(ConfigError, match="eval.reverse_steps"):
        load(ROOT / "params.yaml", {"method": "tedm", "eval.reverse_steps": 1})
    # No churn for the Student-t kernel in the paper: only Heun.
    with pytest.raises(ConfigError, match="eval.sampler.*heun"):
        load(ROOT / "params.yaml", {"method": "tedm", "eval.sampler": "stochastic"})
    with pytest.raises(ConfigError, match="tedm.s_churn"):
        load(ROOT / "params.yaml", {"method": "tedm", "tedm.s_churn": 10.0})
    cfg = load(ROOT / "params.yaml", {"method": "tedm", "tedm.nu": 3})
    assert cfg.method_params.nu == 3.0
