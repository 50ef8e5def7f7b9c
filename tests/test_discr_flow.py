"""Discriminator Flow (Franceschi et al., NeurIPS 2023): the flow's steps and sign with critics
whose gradients are known, the training draws, and learning a shifted blob."""
import math

import pytest
import torch
from torch import nn

from genlib.config import load
from genlib.errors import ConfigError
from genlib.methods.discr_flow import DiscrFlow, DiscrFlowParams

from family_helpers import ROOT, assert_resume_is_exact, assert_seeded_sampling, blob, tiny_cfg, trained


class Linear(nn.Module):
    """``D(x, t) = <a, x>``: the IPM velocity is ``a`` everywhere."""

    def __init__(self, a):
        super().__init__()
        self.a, self.calls = torch.tensor(a), 0

    def forward(self, x, t):
        self.calls += 1
        return x @ self.a


class Well(nn.Module):
    """``D(x, t) = -|x - c|^2``: the data is at ``c``; every velocity points to it."""

    def forward(self, x, t):
        return -(x - torch.tensor([2.0, -1.0])).pow(2).sum(1)


def test_the_ipm_flow_moves_eta_along_a_constant_gradient_in_n_steps():
    m = DiscrFlow(DiscrFlowParams(steps=8, eta=3.0, loss="ipm", grad_penalty=1.0))
    critic = Linear([1.0, -2.0])
    g = torch.Generator().manual_seed(0)
    z = m.sample(nn.ModuleDict({"discriminator": critic}), (5, 2), 1, g)
    start = m.prior((5, 2), torch.Generator().manual_seed(0))
    assert torch.allclose(z - start, torch.tensor([3.0, -6.0]).expand(5, 2), atol=1e-5)
    assert critic.calls == m.network_evals(1, None) == 8


def test_the_vanilla_flow_climbs_the_critic():
    # v = sigmoid(-D) grad D: towards c, slowing as D grows; the particles end nearer c than they began.
    m = DiscrFlow(DiscrFlowParams(steps=20, eta=2.0))
    g = torch.Generator().manual_seed(0)
    z = m.sample(nn.ModuleDict({"discriminator": Well()}), (1000, 2), 1, g)
    start = m.prior((1000, 2), torch.Generator().manual_seed(0))
    c = torch.tensor([2.0, -1.0])
    assert (z - c).norm(dim=1).mean() < 0.5 * (start - c).norm(dim=1).mean()
    # One step by hand: z + (eta / N) sigmoid(-D(z)) * (-2 (z - c)).
    one = DiscrFlow(DiscrFlowParams(steps=1, eta=0.5))
    z0 = one.prior((3, 2), torch.Generator().manual_seed(1))
    d = -(z0 - c).pow(2).sum(1, keepdim=True)
    expected = z0 + 0.5 * torch.sigmoid(-d) * (-2 * (z0 - c))
    assert torch.allclose(one.sample(nn.ModuleDict({"discriminator": Well()}), (3, 2), 1, torch.Generator().manual_seed(1)),
                          expected, atol=1e-6)


def test_training_particles_are_drawn_at_the_flow_s_times():
    m = DiscrFlow(DiscrFlowParams(steps=4, eta=1.0, loss="ipm", grad_penalty=1.0))
    x = torch.zeros(4000, 2)
    z, t = m.particles(Linear([1.0, 0.0]), x, torch.Generator().manual_seed(0))
    assert set(t.tolist()) == {0.0, 0.25, 0.5, 0.75}
    # z_k = z_0 + k eta / N a: the first coordinate's mean at each time is k / 4 (prior mean 0,
    # about 1000 draws each: standard error 0.032).
    for k in range(4):
        rows = z[t == k / 4]
        assert abs(rows[:, 0].mean().item() - k / 4) < 4 / math.sqrt(len(rows))
        assert abs(rows[:, 1].mean().item()) < 4 / math.sqrt(len(rows))


def test_discriminator_flow_learns_a_shifted_blob():
    # 240 steps of batch 256: the particles find the blob N((1, -1), 0.2^2) from the prior N(0, I)
    # (1.41 away), and their spread shrinks from 1 (it measured 0.70; a longer run shrinks it more).
    cfg = tiny_cfg("discr_flow", 30, {"discr_flow.steps": 16, "discr_flow.d_units": 64, "discr_flow.lr": 1e-3})
    method, state = trained(cfg, blob())
    nets = state.ema.models[0.99]
    z = method.sample(nets, (2000, 2), 1, torch.Generator().manual_seed(5))
    assert (z.mean(0) - torch.tensor([1.0, -1.0])).norm() < 0.3
    assert z.std(0).max() < 0.85
    assert_seeded_sampling(method, nets)


def test_discriminator_flow_resumes_exactly(tmp_path):
    cfg = tiny_cfg("discr_flow", 4, {"discr_flow.steps": 4, "discr_flow.d_units": 32})
    assert_resume_is_exact(cfg, blob(), tmp_path, stop_at=5)


def test_discriminator_flow_settings_are_checked_at_the_door():
    with pytest.raises(ConfigError, match="discr_flow.grad_penalty"):
        load(ROOT / "params.yaml", {"method": "discr_flow", "discr_flow.loss": "ipm"})
    with pytest.raises(ConfigError, match="discr_flow.steps"):
        load(ROOT / "params.yaml", {"method": "discr_flow", "discr_flow.steps": 0})
