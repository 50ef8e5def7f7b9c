"""LIM: the loss at alpha = 2 is the Gaussian VP denoising loss, both samplers return the data law
when given the exact fractional score, determinism, shapes, config."""
import pytest
import torch

from genlib.config import load
from genlib.errors import ConfigError
from genlib.methods.base import SampleOptions
from genlib.methods.lim import LIM, LIMParams
from genlib.methods.schedules import cosine_alpha_bar_continuous

from test_config import ROOT
from test_methods import gen, net  # noqa: F401  (net is a fixture)




def test_alpha_two_loss_is_the_vp_denoising_loss(net):
    # At alpha = 2 (a_scale = 1) the noise is N(0, I) and no A is drawn, so the same generator
    # gives t ~ U(t_min, 1], then eps: the VP model's loss || s_theta(x_t, t) - (-eps) ||^2.
    method = LIM(LIMParams(alpha=2.0, loss="squared_l2", t_min=1e-3))
    x0 = torch.randn(512, 2, generator=gen(1)) * 0.7 + 1.0
    g = gen(2)
    t = 1e-3 + (1 - 1e-3) * torch.rand(512, generator=g)
    eps = torch.randn(512, 2, generator=g)
    ab = cosine_alpha_bar_continuous(t.double()).float()[:, None]
    x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
    expected = (net(x_t, t) + eps).pow(2).mean()
    assert torch.allclose(method.loss(net, x0, gen(2)), expected, rtol=1e-5)


def stable_data_oracle(method: LIM, k: float):
    """Data ``k * eps`` (eps: the method's own noise law); then ``X_t`` is stable with
    scale^alpha ``kappa r_t`` where ``r_t = gamma^alpha k^alpha + sigma^alpha``, and its fractional
    score is ``-x / (alpha kappa r_t)``. Returns the exact network output ``sigma^(alpha-1) S``."""
    alpha = method.params.alpha

    def oracle(x, t):
        g, s = method.sch.gamma(t.double()), method.sch.sigma(t.double())
        r = (g**alpha * k**alpha + s**alpha).float()[:, None]
        return -x / (alpha * method.kappa * r) * s.float()[:, None] ** (alpha - 1)

    return oracle


@pytest.mark.parametrize("sampler", ["sde", "ode"])
@pytest.mark.parametrize("alpha", [1.5, 1.8, 2.0])
def test_exact_score_gives_back_the_data_law(sampler, alpha):
    # n = 20000: the median and the 0.9 quantile of |x| have sampling errors near 1%; 200 steps
    # add about 1.5% of discretisation bias. 5% would miss nothing real: a drift coefficient of
    # alpha^2 in place of 2 alpha (equal at alpha = 2 only) is off by 15% at 1.8 and 60% at 1.5.
    method, k, n = LIM(LIMParams(alpha=alpha)), 0.5, 20_000
    out = method.sample(stable_data_oracle(method, k), (n, 2), 200, gen(3), SampleOptions(sampler=sampler))
    ref = k * method.noise((n, 2), gen(4))
    q = torch.tensor([0.5, 0.9])
    got, want = torch.quantile(out.norm(dim=1), q), torch.quantile(ref.norm(dim=1), q)
    assert torch.allclose(got, want, rtol=0.05), (got, want)


def test_fewer_steps_still_finite_and_close(net):
    method = LIM(LIMParams(alpha=1.8))
    out = method.sample(stable_data_oracle(method, 0.5), (4000, 2), 10, gen(5), SampleOptions(sampler="ode"))
    assert torch.isfinite(out).all()
    assert 0.4 < out.norm(dim=1).median() < 0.8  # the law's median is 0.59


def test_ode_is_deterministic_and_draws_only_the_start(net):
    method = LIM(LIMParams())
    g = gen(6)
    a = method.sample(net, (64, 2), 20, g, SampleOptions(sampler="ode"))
    g2 = gen(6)
    method.noise((64, 2), g2)
    assert torch.equal(g.get_state(), g2.get_state())
    assert torch.equal(a, method.sample(net, (64, 2), 20, gen(6), SampleOptions(sampler="ode")))


def test_sde_is_seeded_and_random(net):
    method = LIM(LIMParams())
    opt = SampleOptions(sampler="sde")
    a, b, c = (method.sample(net, (64, 2), 20, gen(s), opt) for s in (7, 7, 8))
    assert a.shape == (64, 2) and torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("loss", ["l2", "squared_l2", "smooth_l1"])
def test_losses_finite_and_differentiable(net, loss):
    method = LIM(LIMParams(loss=loss, clamp_eps=20.0))
    value = method.loss(net, torch.randn(128, 2, generator=gen(9)), gen(10))
    value.backward()
    assert value.ndim == 0 and torch.isfinite(value)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    net.zero_grad()


def test_image_shaped_data():
    method = LIM(LIMParams())
    x0 = torch.randn(4, 1, 8, 8, generator=gen(11))
    conv = torch.nn.Conv2d(1, 1, 3, padding=1)
    loss = method.loss(lambda x, t: conv(x), x0, gen(12))
    assert torch.isfinite(loss)
    out = method.sample(lambda x, t: conv(x), (4, 1, 8, 8), 5, gen(13), SampleOptions(sampler="sde"))
    assert out.shape == (4, 1, 8, 8)


def test_config():
    cfg = load(ROOT / "params.yaml", {"method": "lim", "eval.sampler": "ode", "eval.reverse_steps": 1000})
    assert cfg.method_params.alpha == 1.8 and cfg.eval.sampler == "ode"  # continuous time: no cap
    with pytest.raises(ConfigError, match="eval.sampler.*sde, ode"):
        load(ROOT / "params.yaml", {"method": "lim", "eval.sampler": "dlim"})
    with pytest.raises(ConfigError, match="lim.t_min"):
        load(ROOT / "params.yaml", {"lim.t_min": 0.0})
    with pytest.raises(ConfigError, match="lim.isotropic"):  # LIM's noise is isotropic only
        load(ROOT / "params.yaml", {"lim.isotropic": False})


def test_pipeline_runs_lim(tmp_path, sampler="sde"):
    from genlib.pipeline.evaluate import evaluate_stage
    from genlib.pipeline.generate import generate_stage
    from genlib.pipeline.paths import Paths
    from genlib.pipeline.prepare import prepare_data
    from genlib.pipeline.train import train_stage

    from test_pipeline import TINY

    cfg = load(ROOT / "params.yaml", {**TINY, "method": "lim", "eval.sampler": sampler})
    paths = Paths(tmp_path)
    prepare_data(cfg, paths)
    train_stage(cfg, paths)
    info = generate_stage(cfg, paths)
    metrics = evaluate_stage(cfg, paths)
    assert info["sampler"] == sampler and metrics["n_nonfinite"] == 0 and metrics["w1_exact"] > 0


@pytest.mark.parametrize("sampler", ["sde", "ode"])
def test_clip_x0_leaves_an_exact_point_denoiser_alone_and_bounds_a_bad_one(sampler):
    """Data at one point ``c`` in [-1, 1]: the exact network returns the target of the noise
    ``eps = (x - gamma c) / sigma``, whose x0 is ``c``, so clipping changes nothing; a network that
    predicts no noise implies ``x0 = x / gamma``, far out at ``t = 1``, and clipping bounds it."""
    m = LIM(LIMParams(alpha=1.8))
    c = torch.linspace(-0.9, 0.9, 16).view(1, 1, 4, 4)

    def exact(x, t):
        t64 = t.double().view(-1, 1, 1, 1)
        eps = (x.double() - m.sch.gamma(t64) * c) / m.sch.sigma(t64)
        return m.target(eps).float()

    shape, steps = (64, 1, 4, 4), 20
    clip = SampleOptions(sampler=sampler, clip_x0=1.0)
    plain = m.sample(exact, shape, steps, torch.Generator().manual_seed(0), SampleOptions(sampler=sampler))
    clipped = m.sample(exact, shape, steps, torch.Generator().manual_seed(0), clip)
    assert torch.allclose(plain, clipped, atol=1e-4)
    silent = lambda x, t: torch.zeros_like(x)  # noqa: E731
    free = m.sample(silent, shape, steps, torch.Generator().manual_seed(0), SampleOptions(sampler=sampler))
    bounded = m.sample(silent, shape, steps, torch.Generator().manual_seed(0), clip)
    # The last step ends at t_min, not 0: the sample is gamma x0 + sigma(t_min) eps with |x0| <= 1,
    # and the heavy-tailed eps of the start that the ODE carries along adds up to ~0.5 here.
    assert free.abs().max() > 10 and bounded.abs().max() < 2.0
