import torch

from genlib.methods.schedules import StableSchedule, cosine_alpha_bar


def test_cosine_alpha_bar_shape_and_monotone():
    ab = cosine_alpha_bar(100)
    assert ab.shape == (101,) and ab[0] == 1.0
    assert (ab[1:] < ab[:-1]).all()
    assert 1e-4 < ab[-1] < 1e-3  # the curve stops short of alpha_bar = 0 (COSINE_END)
    beta = 1 - ab[1:] / ab[:-1]
    assert beta.max() < 0.8  # no singular last step at T = 100
    # beta_t capped at 0.999
    assert ((1 - ab[1:] / ab[:-1]) <= 0.999 + 1e-12).all()


def test_same_curve_for_fewer_steps():
    # The network sees t/T, so the T=10 schedule must be the T=100 one at every tenth step,
    # wherever the beta cap does not bind (all but the last step).
    ab100, ab10 = cosine_alpha_bar(100), cosine_alpha_bar(10)
    assert torch.allclose(ab10[:-1], ab100[::10][:-1], rtol=1e-12)


def test_stable_schedule_identities():
    for alpha in (1.2, 1.8, 2.0):
        s = StableSchedule(50, alpha)
        assert torch.allclose(torch.cumprod(s.gamma, 0), s.bar_gamma, rtol=1e-10)
        assert torch.allclose(s.bar_gamma**alpha + s.bar_sigma**alpha, torch.ones(51, dtype=torch.float64))
        assert torch.allclose(s.gamma[1:] ** alpha + s.sigma[1:] ** alpha, torch.ones(50, dtype=torch.float64))
        # scale preservation: bar_sigma_t^a = gamma_t^a bar_sigma_{t-1}^a + sigma_t^a
        lhs = s.bar_sigma[1:] ** alpha
        rhs = s.gamma[1:] ** alpha * s.bar_sigma[:-1] ** alpha + s.sigma[1:] ** alpha
        assert torch.allclose(lhs, rhs)


def test_alpha_two_is_ddpm():
    s, ab = StableSchedule(100, 2.0), cosine_alpha_bar(100)
    assert torch.allclose(s.bar_gamma**2, ab)
    assert torch.allclose(s.bar_sigma**2, 1 - ab)
