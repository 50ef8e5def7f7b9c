"""Tests of genlib.metrics: known values, sample-size-based tolerances, chunking, determinism."""
from __future__ import annotations

import math

import numpy as np
import ot
import pytest
import scipy.stats
import torch
from scipy.spatial import cKDTree
from scipy.spatial.distance import cdist as scipy_cdist

from genlib.metrics import _util, wasserstein
from genlib.metrics.manifold import manifold_stats
from genlib.metrics.mmd import BANDWIDTH_FACTORS
from genlib.metrics.sample_metrics import (
    METRIC_DOCS,
    density_coverage,
    evaluate_samples,
    exact_wasserstein,
    knn_radii,
    metric_keys,
    mmd_rbf,
    mode_weight_error,
    nearest_mode_distance,
    nonfinite_filter,
    precision_recall,
    sliced_wasserstein,
    tail_error,
)

K_NN = 5


def gen(seed: int) -> torch.Generator:
    """A fresh seeded generator."""
    return torch.Generator().manual_seed(seed)


def normal(n: int, seed: int, d: int = 2) -> torch.Tensor:
    """n standard normal points in d dimensions."""
    return torch.randn(n, d, generator=gen(seed))


# ----------------------------------------------------------------------------------------------
# Wasserstein
# ----------------------------------------------------------------------------------------------


def test_identical_sets_have_zero_wasserstein():
    x = normal(500, 0)
    assert exact_wasserstein(x, x.clone(), gen(1)) == pytest.approx(0.0, abs=1e-9)
    assert sliced_wasserstein(x, x.clone(), gen(1)) == pytest.approx(0.0, abs=1e-9)


def test_two_samples_of_same_distribution_have_small_w1():
    # Two n-point samples of N(0, I_2): the empirical W1 shrinks like sqrt(log n / n) ~ 0.06 at
    # n = 2000 (observed ~0.11 across seeds); a 0.3 shift must clear the tolerance by far.
    x, y = normal(2000, 1), normal(2000, 2)
    w1 = exact_wasserstein(x, y, gen(0))
    assert 0.0 < w1 < 0.2
    assert exact_wasserstein(x, y + torch.tensor([0.3, 0.0]), gen(0)) > 0.3
    # Projected sets are 1D, where W1 ~ n^{-1/2} (~0.04 observed).
    assert 0.0 < sliced_wasserstein(x, y, gen(0)) < 0.08


def test_exact_w1_of_a_shift_is_the_shift_length():
    # W1(mu, mu + v) = |v|: the identity coupling costs |v| and f(x) = <x, v>/|v| (1-Lipschitz) attains it.
    x = normal(400, 3)
    v = torch.tensor([6.0, 8.0])
    assert exact_wasserstein(x, x + v, gen(0)) == pytest.approx(10.0, abs=1e-5)


def test_sliced_w1_of_a_shift_is_two_over_pi_times_length():
    # Projected on theta the shift is <v, theta>, so each slice gives |v||cos phi| exactly; with phi
    # uniform, E|cos phi| = 2/pi and sd|cos phi| = sqrt(1/2 - 4/pi^2) ~ 0.308, so the mean over L = 500
    # directions has sd 10 * 0.308 / sqrt(500) ~ 0.14. Tolerance: 4 sd.
    x = normal(300, 4)
    v = torch.tensor([10.0, 0.0])
    sd = 10.0 * math.sqrt(0.5 - 4.0 / math.pi**2) / math.sqrt(500)
    assert sliced_wasserstein(x, x + v, gen(0), n_projections=500) == pytest.approx(10 * 2 / math.pi, abs=4 * sd)


def test_sliced_equal_size_path_matches_pot():
    # Equal sizes use the sort-based path, unequal sizes POT's general solver; doubling every point
    # leaves the empirical measure unchanged, so both paths must give the same number.
    x, y = normal(300, 5), 2.0 * normal(300, 6) + 1.0
    fast = sliced_wasserstein(x, y, gen(7), n_projections=50)
    general = sliced_wasserstein(x, torch.cat([y, y]), gen(7), n_projections=50)
    assert fast == pytest.approx(general, abs=1e-9)
    rng = np.random.RandomState(_util.numpy_seed(gen(7)))
    proj = ot.sliced.get_random_projections(2, 50, seed=rng)
    pot = ot.sliced_wasserstein_distance(x.double().numpy(), y.double().numpy(), p=1, projections=proj)
    assert fast == pytest.approx(float(pot), abs=1e-9)


def test_exact_w1_matches_scipy_in_one_dimension():
    u = torch.randn(300, generator=gen(8))
    w = 0.5 * torch.randn(500, generator=gen(9)) ** 3 + 0.2  # a skewed, heavier-tailed law
    embed = lambda t: torch.stack([t, torch.zeros_like(t)], dim=1)  # noqa: E731
    expected = scipy.stats.wasserstein_distance(u.double().numpy(), w.double().numpy())
    assert exact_wasserstein(embed(u), embed(w), gen(0)) == pytest.approx(expected, abs=1e-6)


def test_exact_w1_refuses_a_non_optimal_solution(monkeypatch):
    monkeypatch.setattr(wasserstein, "EMD_MAX_ITER", 10)
    with pytest.raises(RuntimeError, match="optimality"):
        exact_wasserstein(normal(200, 0), normal(200, 1), gen(0))


def test_exact_w1_subsamples_to_n_points():
    # With subsampling the result depends on the generator; without it (n <= n_points) it cannot.
    x, y = normal(400, 10), normal(400, 11)
    assert exact_wasserstein(x, y, gen(0), n_points=100) != exact_wasserstein(x, y, gen(1), n_points=100)
    assert exact_wasserstein(x, y, gen(0)) == exact_wasserstein(x, y, gen(1))


# ----------------------------------------------------------------------------------------------
# MMD
# ----------------------------------------------------------------------------------------------


def brute_force_mmd(x: np.ndarray, y: np.ndarray, bandwidths: list[float]) -> float:
    """Unbiased MMD^2 from full kernel matrices with zeroed diagonals."""
    def gram(a, b):
        sq = scipy_cdist(a, b, "sqeuclidean")
        return sum(np.exp(-sq / (2 * h**2)) for h in bandwidths)
    kxx, kyy, kxy = gram(x, x), gram(y, y), gram(x, y)
    n, m = len(x), len(y)
    np.fill_diagonal(kxx, 0.0)
    np.fill_diagonal(kyy, 0.0)
    return kxx.sum() / (n * (n - 1)) + kyy.sum() / (m * (m - 1)) - 2 * kxy.mean()


def test_mmd_chunked_matches_brute_force(monkeypatch):
    monkeypatch.setattr(_util, "CHUNK_ELEMS", 1000)  # 1000 // 170 = 5 rows per chunk
    x, y = normal(150, 12), 1.5 * normal(170, 13)
    bw = [0.3, 1.0, 3.0]
    expected = brute_force_mmd(x.double().numpy(), y.double().numpy(), bw)
    assert mmd_rbf(x, y, gen(0), bandwidths=bw) == pytest.approx(expected, abs=1e-12)


def test_mmd_of_identical_sets_is_tiny_and_not_positive():
    # For y = x: MMD_u^2 = 2S/(n^2 (n-1)) - 2K/n with S <= K n (n-1) the off-diagonal kernel sum,
    # so -2K/n <= MMD_u^2 <= 0, K = number of kernels.
    n = 1000
    x = normal(n, 14)
    value = mmd_rbf(x, x.clone(), gen(0))
    assert -2 * len(BANDWIDTH_FACTORS) / n <= value <= 0.0


def test_mmd_of_two_samples_is_near_zero_and_a_shift_is_not():
    # Under the null the U-statistic is centred with sd O(1/n); across seeds |MMD^2| < 1e-3 at n = 2000.
    x, y = normal(2000, 15), normal(2000, 16)
    assert abs(mmd_rbf(x, y, gen(0))) < 4e-3
    assert mmd_rbf(x, y + torch.tensor([0.5, 0.0]), gen(0)) > 0.05


# ----------------------------------------------------------------------------------------------
# Precision / recall / density / coverage
# ----------------------------------------------------------------------------------------------


def test_knn_radii_exclude_the_point_itself():
    line = torch.arange(10, dtype=torch.float32)[:, None].expand(10, 2).contiguous()
    radii = knn_radii(line.double(), 1)
    assert torch.allclose(radii, torch.full((10,), math.sqrt(2), dtype=torch.float64))


def test_identical_sets_are_fully_precise_and_covered():
    # Each k-NN ball holds its centre and its k neighbours, so density = (k+1)/k exactly.
    x = normal(800, 17)
    assert precision_recall(x, x.clone(), k=K_NN) == (1.0, 1.0)
    density, coverage = density_coverage(x, x.clone(), k=K_NN)
    assert density == pytest.approx((K_NN + 1) / K_NN, abs=1e-12)
    assert coverage == 1.0


def test_two_samples_of_same_distribution():
    # Naeem et al. 2020: for identical distributions E[density] = 1 and coverage -> 1 - 2^-k
    # (0.969 at k = 5); the binomial sd of either over 2,000 points is < 0.01.
    real, fake = normal(2000, 18), normal(2000, 19)
    precision, recall = precision_recall(real, fake, k=K_NN)
    density, coverage = density_coverage(real, fake, k=K_NN)
    assert precision > 0.97 and recall > 0.97
    assert density == pytest.approx(1.0, abs=0.05)
    assert coverage == pytest.approx(1 - 2.0**-K_NN, abs=0.02)


def test_disjoint_sets_score_zero():
    real, fake = normal(300, 20), normal(300, 21) + 100.0
    assert precision_recall(real, fake) == (0.0, 0.0)
    assert density_coverage(real, fake) == (0.0, 0.0)


def test_manifold_metrics_match_brute_force(monkeypatch):
    monkeypatch.setattr(_util, "CHUNK_ELEMS", 1000)  # several chunks for every pass
    real, fake = normal(250, 22), normal(200, 23) + 1.5
    r_np, f_np = real.double().numpy(), fake.double().numpy()
    r_real = cKDTree(r_np).query(r_np, k=K_NN + 1)[0][:, K_NN]
    r_fake = cKDTree(f_np).query(f_np, k=K_NN + 1)[0][:, K_NN]
    inside_real = scipy_cdist(f_np, r_np) <= r_real[None, :]  # (fake, real)
    inside_fake = scipy_cdist(r_np, f_np) <= r_fake[None, :]  # (real, fake)
    stats = manifold_stats(real, fake, k=K_NN)
    assert stats.precision == pytest.approx(inside_real.any(axis=1).mean(), abs=1e-12)
    assert stats.recall == pytest.approx(inside_fake.any(axis=1).mean(), abs=1e-12)
    assert stats.density == pytest.approx(inside_real.sum() / (K_NN * len(f_np)), abs=1e-12)
    assert stats.coverage == pytest.approx(inside_real.any(axis=0).mean(), abs=1e-12)
    assert 0.0 < stats.precision < 1.0 and 0.0 < stats.recall < 1.0


# ----------------------------------------------------------------------------------------------
# Tails and modes
# ----------------------------------------------------------------------------------------------

MODES = torch.tensor([[0.0, 0.0], [1000.0, 0.0], [0.0, 1000.0]])


def mixture(counts: list[int], seed: int, scale: float = 0.1) -> torch.Tensor:
    """counts[i] points around MODES[i] with Gaussian noise of the given scale."""
    noise = scale * normal(sum(counts), seed)
    centres = torch.repeat_interleave(MODES, torch.tensor(counts), dim=0)
    return centres + noise


def test_nearest_mode_distance():
    x = torch.tensor([[3.0, 4.0], [1000.0, 1.0], [-1.0, 1000.0]])
    expected = torch.tensor([5.0, 1.0, 1.0], dtype=torch.float64)
    assert torch.allclose(nearest_mode_distance(x, MODES), expected)


def test_tail_error_zero_for_identical_sets():
    ref = mixture([300, 200, 100], 24, scale=1.0)
    out = tail_error(ref, ref.clone(), MODES)
    assert out["tail_error"] == 0.0
    assert set(out) == {"tail_error"} | {f"tail_q{q}_{w}" for q in ("0.9", "0.99", "0.999") for w in ("gen", "ref")}


def test_tail_error_of_a_tenfold_spread_is_log10_squared():
    # Offsets scaled by 10 (at most ~40 here, far below the 1000 mode spacing) keep every point's
    # nearest mode, so every quantile scales by 10 and each log-ratio is log 10.
    ref = mixture([300, 200, 100], 25, scale=1.0)
    centres = MODES[torch.cdist(ref, MODES).argmin(dim=1)]
    wide = centres + 10.0 * (ref - centres)
    out = tail_error(wide, ref, MODES)
    assert out["tail_error"] == pytest.approx(math.log(10.0) ** 2, rel=1e-5)
    assert out["tail_q0.99_gen"] == pytest.approx(10.0 * out["tail_q0.99_ref"], rel=1e-5)


def test_tail_error_without_modes_uses_the_reference_mean():
    ref = 2.0 * normal(1000, 26) + 5.0
    centre = ref.double().mean(dim=0).float()
    out = tail_error(centre + 10.0 * (ref - centre), ref, None)
    assert out["tail_error"] == pytest.approx(math.log(10.0) ** 2, rel=1e-4)


def test_tail_error_without_modes_measures_from_the_reference_mean():
    # ref = c +- y has mean c; gen = c + (|y_1|, y_2), twice, lies in a half-plane (its mean is not c)
    # but has exactly ref's distances to c, so the error is 0 only when measured from ref's mean.
    y, c = normal(500, 39).double(), torch.tensor([3.0, -2.0], dtype=torch.float64)
    ref = torch.cat([y, -y]) + c
    folded = torch.stack([y[:, 0].abs(), y[:, 1]], dim=1)
    gen = torch.cat([folded, folded]) + c
    assert tail_error(gen, ref, None)["tail_error"] == pytest.approx(0.0, abs=1e-10)


def test_mode_weight_error_known_counts():
    # w_gen = (0.30, 0.57, 0.13) vs (0.5, 0.3, 0.2): ratios (0.6, 1.9, 0.65); |log 1.9| = 0.64 is the
    # largest, so the worst ratio is 1.9 although the minimum is 0.6.
    out = mode_weight_error(mixture([30, 57, 13], 27), MODES, [0.5, 0.3, 0.2])
    assert out["mode_weights_gen"] == pytest.approx([0.30, 0.57, 0.13], abs=1e-12)
    assert out["mode_weight_l1"] == pytest.approx(0.20 + 0.27 + 0.07, abs=1e-12)
    assert out["mode_ratio_min"] == pytest.approx(0.6, abs=1e-12)
    assert out["mode_ratio_worst"] == pytest.approx(1.9, abs=1e-12)


def test_mode_ratio_worst_is_measured_in_log_scale():
    # Ratios (0.5, 1.6, 1.35): 1.6 is farther from 1 linearly, but |log 0.5| = 0.69 > |log 1.6| = 0.47.
    out = mode_weight_error(mixture([25, 48, 27], 38), MODES, (0.5, 0.3, 0.2))
    assert out["mode_ratio_worst"] == pytest.approx(0.5, abs=1e-12)


def test_mode_weight_error_missing_mode_is_worst():
    out = mode_weight_error(mixture([70, 30, 0], 28), MODES, torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64))
    assert out["mode_weight_l1"] == pytest.approx(0.4, abs=1e-12)
    assert out["mode_ratio_min"] == 0.0
    assert out["mode_ratio_worst"] == 0.0


def test_mode_weight_error_zero_weight_mode_counts_in_l1_only():
    # Mass on a zero-weight mode has no ratio; it still shows in the L1 term (0.1 + 0 + 0.1).
    out = mode_weight_error(mixture([40, 50, 10], 37), MODES, (0.5, 0.5, 0.0))
    assert out["mode_weight_l1"] == pytest.approx(0.2, abs=1e-12)
    assert out["mode_ratio_min"] == pytest.approx(0.8, abs=1e-12)
    assert out["mode_ratio_worst"] == pytest.approx(0.8, abs=1e-12)


# ----------------------------------------------------------------------------------------------
# Non-finite samples and the aggregator
# ----------------------------------------------------------------------------------------------


def test_nonfinite_rows_are_counted_and_dropped():
    x = normal(6, 29)
    x[1, 0], x[3, 1], x[4] = math.nan, math.inf, -math.inf
    kept, n_bad = nonfinite_filter(x)
    assert n_bad == 3
    assert torch.equal(kept, x[[0, 2, 5]])


SMALL = dict(n_exact=200, n_mmd=200, n_projections=100)


def test_evaluate_samples_keys_and_docs():
    ref = mixture([300, 200, 100], 30)
    out = evaluate_samples(mixture([250, 250, 100], 31), ref, gen(0), MODES, [0.5, 1 / 3, 1 / 6], **SMALL)
    assert list(out) == metric_keys(with_modes=True)
    assert set(out) <= set(METRIC_DOCS)
    assert all(math.isfinite(v) for key, v in out.items() if key != "mode_weights_gen")
    assert len(out["mode_weights_gen"]) == 3
    assert list(evaluate_samples(ref, ref, gen(0), **SMALL)) == metric_keys(with_modes=False)


def test_evaluate_samples_drops_nonfinite_rows():
    ref, x = normal(300, 32), normal(300, 33)
    x[:7, 0] = math.nan
    out = evaluate_samples(x, ref, gen(0), **SMALL)
    assert out["n_nonfinite"] == 7
    assert math.isfinite(out["w1_exact"]) and math.isfinite(out["precision"])


@pytest.mark.parametrize("n_finite", [0, 1])
def test_evaluate_samples_survives_nonfinite_input(n_finite):
    x = torch.full((50, 2), math.nan)
    x[:n_finite] = 0.0
    out = evaluate_samples(x, normal(100, 34), gen(0), MODES, [0.5, 0.3, 0.2])
    assert list(out) == metric_keys(with_modes=True)
    assert out["n_nonfinite"] == 50 - n_finite
    assert all(math.isnan(v) for key, v in out.items() if key not in ("n_nonfinite", "mode_weights_gen"))


def test_evaluate_samples_is_deterministic_and_leaves_global_rng_alone():
    ref, x = mixture([300, 200, 100], 35), mixture([300, 200, 100], 36, scale=0.2)
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()
    kwargs = dict(SMALL, n_manifold=250)
    first = evaluate_samples(x, ref, gen(42), MODES, [0.5, 0.3, 0.2], **kwargs)
    second = evaluate_samples(x, ref, gen(42), MODES, [0.5, 0.3, 0.2], **kwargs)
    other = evaluate_samples(x, ref, gen(43), MODES, [0.5, 0.3, 0.2], **kwargs)
    assert first == second
    assert first["w1_exact"] != other["w1_exact"] and first["w1_sliced"] != other["w1_sliced"]
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), np_state))


def test_mode_weights_are_measured_against_the_reference_assignment():
    # A reference whose nearest-mode fractions (0.7, 0.3) differ from the mixture weights (0.9,
    # 0.1), as heavy tails make them: a generator that copies the reference is perfect.
    from genlib.metrics.sample_metrics import evaluate_samples

    modes = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    g = torch.Generator().manual_seed(0)
    ref = torch.cat([torch.randn(700, 2, generator=g) * 0.1, torch.randn(300, 2, generator=g) * 0.1 + modes[1]])
    out = evaluate_samples(ref.clone(), ref, torch.Generator().manual_seed(1), modes=modes, weights=[0.9, 0.1],
                           n_exact=200, n_mmd=200, n_projections=20)
    assert out["mode_weight_l1"] == 0.0
    assert out["mode_ratio_worst"] == 1.0 and out["mode_ratio_rarest"] == 1.0


def test_rarest_mode_ratio():
    from genlib.metrics.modes import mode_weight_error

    modes = torch.tensor([[0.0, 0.0], [10.0, 0.0], [20.0, 0.0]])
    gen = torch.cat([modes[0].expand(50, 2), modes[1].expand(45, 2), modes[2].expand(5, 2)])
    out = mode_weight_error(gen, modes, [0.5, 0.4, 0.1])
    assert abs(out["mode_ratio_rarest"] - 0.5) < 1e-12
