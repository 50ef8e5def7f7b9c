"""Alpha-stable sampling against scipy.stats.levy_stable and the characteristic function."""
import math

import numpy as np
import pytest
import scipy.stats as st
import torch

from genlib.stable import sample_sas, sample_skewed_levy

N = 20_000
# A two-sample KS test at this size rejects a scale error of a few percent; p > 1e-3 keeps the
# false-alarm rate of the fixed-seed draws negligible.
P_MIN = 1e-3


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("alpha", [0.7, 1.2, 1.5, 1.8, 1.95])
def test_sas_matches_scipy(alpha):
    x = sample_sas(alpha, (N, 1), gen(1), isotropic=False).numpy().ravel()
    y = st.levy_stable.rvs(alpha, 0.0, size=N, random_state=np.random.default_rng(2))
    assert st.ks_2samp(x, y).pvalue > P_MIN


@pytest.mark.parametrize("alpha", [0.7, 1.2, 1.5, 1.8, 1.95])
def test_positive_stable_matches_scipy(alpha):
    a = sample_skewed_levy(alpha, (N,), gen(3)).numpy()
    scale = 2 * math.cos(math.pi * alpha / 4) ** (2 / alpha)
    b = st.levy_stable.rvs(alpha / 2, 1.0, scale=scale, size=N, random_state=np.random.default_rng(4))
    assert (a > 0).all()
    assert st.ks_2samp(a, b).pvalue > P_MIN


@pytest.mark.parametrize("alpha", [0.8, 1.3, 1.7, 2.0])
@pytest.mark.parametrize("isotropic", [True, False])
def test_characteristic_function(alpha, isotropic):
    # E cos(t X) = exp(-|t|^alpha) per coordinate; the Monte-Carlo std of a cosine mean is < 1/sqrt(N).
    x = sample_sas(alpha, (N, 2), gen(5), isotropic=isotropic).numpy()
    for t in (0.3, 1.0, 2.0):
        emp = np.cos(t * x[:, 0]).mean()
        assert abs(emp - math.exp(-(t**alpha))) < 5 / math.sqrt(N)


def test_a_scale_one_is_standard_gaussian_at_alpha_two():
    x = sample_sas(2.0, (N, 2), gen(6), a_scale=1.0).numpy()
    assert abs(x.std() - 1.0) < 5 / math.sqrt(2 * N)
    assert torch.equal(sample_skewed_levy(2.0, (4,), gen(0), a_scale=1.0), torch.ones(4))


def test_isotropic_shares_one_a_per_sample():
    g = gen(7)
    a = sample_skewed_levy(1.5, (8,), g)
    x = sample_sas(1.5, (8, 3), gen(8), a=a)
    z = sample_sas(2.0, (8, 3), gen(8), a=torch.ones(8))
    assert torch.allclose(x, a.sqrt()[:, None] * z)


def test_clamps_and_determinism():
    a = sample_skewed_levy(1.2, (N,), gen(9), clamp_a=3.0)
    assert a.max() <= 3.0
    e = sample_sas(1.2, (N, 2), gen(9), clamp_eps=2.0)
    assert e.abs().max() <= 2.0
    assert torch.equal(sample_sas(1.2, (5, 2), gen(10)), sample_sas(1.2, (5, 2), gen(10)))
    assert not torch.equal(sample_sas(1.2, (5, 2), gen(10)), sample_sas(1.2, (5, 2), gen(11)))


def test_bad_alpha():
    with pytest.raises(ValueError, match="alpha"):
        sample_skewed_levy(2.5, (3,), gen())


def test_the_smallest_alpha_whose_draws_stay_finite_in_float32(monkeypatch):
    """At the bound the largest draw the sampler can make (both uniforms at the ends torch.rand
    reaches) is finite, just below it inf; and it is the sampler's own draw at those ends."""
    import genlib.stable as stable

    from genlib.data.toy2d_spec import FINITE_ALPHA

    bound = stable.smallest_finite_alpha()
    assert bound == 1.0672
    # The data sets draw in float64 and store float32: the spec's torch-free copy of their bound.
    assert stable.smallest_finite_alpha(dtype=torch.float64, below=torch.finfo(torch.float32).max) == FINITE_ALPHA == 1.07
    assert 1e38 < stable.largest_a(bound) < math.inf
    assert stable.largest_a(bound - 1e-4) == math.inf and stable.largest_a(0.5) == math.inf
    assert stable.largest_a(1.7) < stable.largest_a(1.2) < stable.largest_a(bound) and stable.largest_a(2.0) == 2.0
    ends = [0.0, 1.0 - 2.0**-24]
    drawn = []
    for r_u in ends:
        for r_e in ends:
            uniforms = iter([torch.tensor([r_u]), torch.tensor([r_e])])
            monkeypatch.setattr(stable, "_uniform", lambda *args: next(uniforms))
            drawn.append(float(sample_skewed_levy(bound, (1,), gen())))
    assert max(drawn) == stable.largest_a(bound)
    with pytest.raises(ValueError):
        stable.largest_a(0.0)
