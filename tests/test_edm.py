"""EDM (Karras et al., NeurIPS 2022): the preconditioning, the training target, the noise levels
and both samplers, checked with exact denoisers whose answers are known."""
import math

import pytest
import torch

from genlib.config import load
from genlib.errors import ConfigError
from genlib.methods.base import SampleOptions
from genlib.methods.edm import EDM, EDMParams

from test_config import ROOT


class ExactF(torch.nn.Module):
    """The network ``F`` whose denoiser is exact for Gaussian data ``N(mean, s^2 I)``:
    ``D(x; sigma) = mean + s^2 / (s^2 + sigma^2) (x - mean)``, undone through the preconditioning."""

    def __init__(self, method: EDM, s: float, mean: float = 0.0) -> None:
        super().__init__()
        self.method, self.s, self.mean, self.calls = method, s, mean, 0

    def forward(self, x_in, c_noise):
        self.calls += 1
        sigma = (4 * c_noise).exp().view(-1, *([1] * (x_in.dim() - 1)))
        c_skip, c_out, c_in, _ = self.method._scalings(sigma)
        x = x_in / c_in
        d = self.mean + self.s**2 / (self.s**2 + sigma**2) * (x - self.mean)
        return (d - c_skip * x) / c_out


def test_the_noise_levels_are_eq_5():
    m = EDM(EDMParams())
    sig = m.sigmas(18)
    assert len(sig) == 19 and sig[-1] == 0.0
    assert sig[0] == pytest.approx(80.0) and sig[17] == pytest.approx(0.002)
    assert all(a > b for a, b in zip(sig, sig[1:]))
    # rho = 7: sigma^(1/7) is linear in the step index.
    roots = [s ** (1 / 7) for s in sig[:-1]]
    steps = [b - a for a, b in zip(roots, roots[1:])]
    assert max(steps) == pytest.approx(min(steps), rel=1e-9)


def test_the_training_target_is_what_an_exact_denoiser_gives():
    # Data a single point y0: the exact denoiser is D = y0 for every x, so F's exact output
    # (y0 - c_skip x) / c_out is corrupt's target for every draw, and the loss is 0.
    m = EDM(EDMParams(sigma_data=0.7))
    y0 = torch.tensor([[1.5, -0.5]]).repeat(4096, 1)
    x_in, c_noise, target = m.corrupt(y0, torch.Generator().manual_seed(0))
    sigma = (4 * c_noise).exp()[:, None]
    c_skip, c_out, c_in, _ = m._scalings(sigma)
    x = x_in / c_in
    assert torch.allclose((y0 - c_skip * x) / c_out, target, atol=1e-4)
    # ln sigma ~ N(P_mean, P_std^2): the mean and std of 4096 draws within 4 standard errors.
    log_sigma = 4 * c_noise
    se = 1.2 / math.sqrt(4096)
    assert abs(log_sigma.mean().item() + 1.2) < 4 * se
    assert abs(log_sigma.std().item() - 1.2) < 4 * 1.2 / math.sqrt(2 * 4096)
    # The preconditioned input has unit variance at every noise level when data std = sigma_d.
    data = torch.randn(4096, 2, generator=torch.Generator().manual_seed(1)) * 0.7
    x_in, _, target = m.corrupt(data, torch.Generator().manual_seed(2))
    assert abs(x_in.std().item() - 1.0) < 0.05 and abs(target.std().item() - 1.0) < 0.05


@pytest.mark.parametrize("sampler", ["heun", "stochastic"])
def test_both_samplers_return_the_data_law_with_the_exact_denoiser(sampler):
    # Gaussian data N(1, 0.5^2), 200 steps (the discretisation error is then below 0.002 in the
    # std; at 18 steps it is 0.03 for Heun, falling 4x per doubling: the next test), 20,000 2D samples.
    # Standard errors: of the mean, the start's noise mapped down, 0.5 / sqrt(40000) = 0.0025; of
    # the std, 0.5 / sqrt(2 * 40000) = 0.0018. The sampler starts at N(0, sigma_max^2) as Alg. 1
    # does, not at the data's mean: that offset of 1 shrinks to 1 * 0.5 / 80 = 0.006.
    m = EDM(EDMParams(sigma_data=0.5))
    net = ExactF(m, s=0.5, mean=1.0)
    x = m.sample(net, (20000, 2), 200, torch.Generator().manual_seed(0), SampleOptions(sampler=sampler))
    assert abs(x.mean().item() - 1.0) < 4 * 0.0025 + 0.0063
    assert abs(x.std().item() - 0.5) < 4 * 0.0018 + 0.002
    assert net.calls == m.network_evals(200, SampleOptions(sampler=sampler)) == 2 * 200 - 1


def test_heun_is_second_order_on_the_probability_flow():
    # For Gaussian data the ODE is solved exactly by x(sigma) = x_T sqrt(s^2 + sigma^2) / sqrt(s^2 + sigma_T^2);
    # Heun's error falls about 4x when the steps double, Euler's (no correction) would fall 2x.
    m = EDM(EDMParams(sigma_min=0.5, sigma_max=5.0, rho=1.0))
    net = ExactF(m, s=1.0)

    def error(n):
        g = torch.Generator().manual_seed(0)
        x = m.sample(net, (1, 1), n, g).double()
        start = torch.randn((1, 1), generator=torch.Generator().manual_seed(0)) * 5.0
        # Integrate to sigma_min exactly, then the last Euler step to 0 as the sampler does.
        sig = m.sigmas(n)
        at_min = start.double() * math.sqrt(1 + sig[-2] ** 2) / math.sqrt(1 + 25.0)
        exact = at_min / (1 + sig[-2] ** 2)  # D(x; sigma_min), the Euler step to sigma = 0
        return abs((x - exact).item())

    e1, e2 = error(8), error(16)
    assert 3.0 < e1 / e2 < 5.5, (e1, e2)


def test_edm_settings_are_checked_at_the_door():
    with pytest.raises(ConfigError, match="edm.sigma_min"):
        load(ROOT / "params.yaml", {"method": "edm", "edm.sigma_min": 100.0})
    with pytest.raises(ConfigError, match="eval.reverse_steps"):
        load(ROOT / "params.yaml", {"method": "edm", "eval.reverse_steps": 1})
    with pytest.raises(ConfigError, match="eval.sampler.*heun, stochastic"):
        load(ROOT / "params.yaml", {"method": "edm", "eval.sampler": "ddim"})
