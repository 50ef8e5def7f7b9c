"""Tests of the 2D toy datasets in genlib.data.toy2d."""
from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import pytest
import torch

from genlib.data import shapes
from genlib.data.toy2d import (
    TOY_DATASETS,
    UNBALANCED_GRID_WEIGHTS,
    GmmGrid,
    SasGrid,
    ToyDataset,
    ToyParams,
    check_params,
    component_counts,
    make_dataset,
)
from genlib.errors import ConfigError
from genlib.registry import DATASETS

WEIGHT_TEXT = ("0.01", "0.1", "0.3", "0.2", "0.02", "0.15", "0.02", "0.15", "0.05")


def gen(seed: int = 0) -> torch.Generator:
    """A CPU generator seeded with seed."""
    return torch.Generator().manual_seed(seed)


def params(dataset: str, **kw) -> ToyParams:
    """ToyParams for dataset, with the unbalanced weights on grids unless overridden."""
    if "grid" in dataset:
        kw.setdefault("weights", UNBALANCED_GRID_WEIGHTS)
    return ToyParams(dataset=dataset, **kw)


def floor_cumsum_counts(n: int) -> list[int]:
    """Counts from floor(cumsum(w) * n), computed in exact rational arithmetic."""
    bounds, total = [0], Fraction(0)
    for w in WEIGHT_TEXT:
        total += Fraction(w)
        bounds.append(math.floor(total * n))
    return [b - a for a, b in zip(bounds, bounds[1:])]


def nearest_mode(x: torch.Tensor, modes: torch.Tensor) -> torch.Tensor:
    """Index of the closest mode of each point."""
    return torch.cdist(x, modes).argmin(dim=1)


# ------------------------------------------------------------------------------------------------
# Every dataset
# ------------------------------------------------------------------------------------------------


def test_all_toy_datasets_are_registered():
    for name in TOY_DATASETS:
        assert name in DATASETS
        assert issubclass(DATASETS.get(name), ToyDataset)


@pytest.mark.parametrize("name", TOY_DATASETS)
def test_shape_dtype_and_modes(name):
    data = DATASETS.get(name)(params(name))
    x = data.sample(2000, gen())
    assert x.shape == (2000, 2) and x.dtype == torch.float32
    assert torch.isfinite(x).all()
    assert data.sample(0, gen()).shape == (0, 2)
    assert (data.modes is None) == (data.weights is None)
    if data.modes is not None:
        assert data.modes.dim() == 2 and data.modes.shape[1] == 2
        assert data.weights.shape == (len(data.modes),)
        assert data.weights.sum().item() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("name", TOY_DATASETS)
def test_deterministic_under_seed_and_not_global_rng(name):
    data = make_dataset(params(name))
    torch.manual_seed(1)
    a = data.sample(500, gen(7))
    torch.manual_seed(2)
    b = data.sample(500, gen(7))
    c = data.sample(500, gen(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("name", TOY_DATASETS)
def test_roughly_inside_the_box(name):
    x = make_dataset(params(name)).sample(4000, gen())
    median_abs = x.abs().median().item()
    assert median_abs < 4.5


def test_negative_n_is_rejected():
    with pytest.raises(ValueError):
        make_dataset(params("gmm_grid")).sample(-1, gen())


# ------------------------------------------------------------------------------------------------
# Mixtures: exact counts, shuffling, scale, tails
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [32000, 1001, 100, 7])
def test_component_counts_are_floor_cumsum(n):
    counts = component_counts(UNBALANCED_GRID_WEIGHTS, n)
    assert counts.tolist() == floor_cumsum_counts(n)
    assert counts.sum().item() == n


@pytest.mark.parametrize("n", [32000, 1001])
def test_sas_grid_labels_have_exact_counts(n):
    data = SasGrid(params("sas_grid"))
    _, labels = data.sample_labeled(n, gen(3))
    assert torch.bincount(labels, minlength=9).tolist() == floor_cumsum_counts(n)


@pytest.mark.parametrize("n", [32000, 1001])
def test_gmm_grid_nearest_mode_counts_are_exact(n):
    data = GmmGrid(params("gmm_grid", std=0.05))
    x = data.sample(n, gen(4))
    counts = torch.bincount(nearest_mode(x, data.modes), minlength=9)
    assert counts.tolist() == floor_cumsum_counts(n)


def test_grid_modes_are_row_major():
    data = GmmGrid(params("gmm_grid", n_mixture=16, weights=None))
    assert data.modes.shape == (16, 2)
    for i in range(4):
        for j in range(4):
            assert data.modes[i * 4 + j].tolist() == [i, j]
    assert torch.allclose(data.weights, torch.full((16,), 1 / 16))


def test_mixture_points_are_shuffled():
    data = GmmGrid(params("gmm_grid", std=0.05))
    labels = nearest_mode(data.sample(2000, gen()), data.modes)
    assert (labels[1:] < labels[:-1]).any()
    # the first 200 points should not all come from a few components
    assert len(labels[:200].unique()) >= 6


def test_gmm_grid_component_std():
    std, n = 0.1, 32000
    data = GmmGrid(params("gmm_grid", std=std))
    x, labels = data.sample_labeled(n, gen(5))
    residual = x - data.modes[labels]
    assert residual.mean(0).abs().max().item() < 5 * std / math.sqrt(n)
    # sample std of m Gaussian draws has standard error about std / sqrt(2 m)
    assert residual.std(0).sub(std).abs().max().item() < 5 * std / math.sqrt(2 * n)
    for k in range(9):
        m = int((labels == k).sum())
        comp_std = residual[labels == k].std(0)
        assert comp_std.sub(std).abs().max().item() < 5 * std / math.sqrt(2 * m)


def test_sas_grid_marginal_tail_matches_stable_asymptote():
    alpha, std, n = 1.7, 0.1, 100_000
    # P(|X| > x) ~ 2 C x^-alpha for X with characteristic function exp(-|t|^alpha)
    c_alpha = math.gamma(alpha) * math.sin(math.pi * alpha / 2) / math.pi
    expected = 2 * c_alpha * (1.0 / std) ** (-alpha)  # about 5.2e-3; the exact value is ~6% higher
    for isotropic in (True, False):
        data = SasGrid(params("sas_grid", std=std, data_alpha=alpha, isotropic=isotropic))
        x, labels = data.sample_labeled(n, gen(6))
        frac = ((x - data.modes[labels]).abs() > 1.0).double().mean(0)
        assert ((frac / expected > 0.85) & (frac / expected < 1.35)).all(), (isotropic, frac)


def test_sas_grid_is_heavy_tailed_compared_with_gmm_grid():
    n = 32000
    far = {}
    for name in ("sas_grid", "gmm_grid"):
        data = make_dataset(params(name, std=0.1, data_alpha=1.7))
        x, labels = data.sample_labeled(n, gen(9))
        far[name] = ((x - data.modes[labels]).norm(dim=1) > 1.0).double().mean().item()
    assert far["sas_grid"] > 3e-3
    assert far["gmm_grid"] == 0.0  # a 10-sigma event


def test_sas_at_alpha_2_is_gaussian_with_variance_2_std_squared():
    std = 0.3
    data = make_dataset(params("sas", std=std, data_alpha=2.0))
    x = data.sample(32000, gen())
    assert x.std(0).sub(std * math.sqrt(2)).abs().max().item() < 0.02
    assert data.modes.tolist() == [[0.0, 0.0]] and data.weights.tolist() == [1.0]


def test_gmm_2_modes_weights_and_ignored_n_mixture():
    data = make_dataset(params("gmm_2", theta=2.5, n_mixture=9, weights=(0.25, 0.75), std=0.05))
    assert data.modes.tolist() == [[-2.5, 0.0], [2.5, 0.0]]
    x = data.sample(1000, gen())
    assert (x[:, 0] > 0).sum().item() == 750
    uniform = make_dataset(params("gmm_2"))
    assert uniform.weights.tolist() == [0.5, 0.5]


def test_skewed_levy_positive_and_heavy():
    x = make_dataset(params("skewed_levy", data_alpha=1.5, std=0.1)).sample(32000, gen())
    assert (x > 0).all()
    assert x.max().item() > 100 * x.median().item()


# ------------------------------------------------------------------------------------------------
# Validation
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dataset, overrides, key",
    [
        ("sas_grid", {"n_mixture": 8, "weights": None}, "data.n_mixture"),
        ("gmm_grid", {"n_mixture": 0, "weights": None}, "data.n_mixture"),
        ("gmm_grid", {"n_mixture": 4.0, "weights": None}, "data.n_mixture"),
        ("sas_grid", {"weights": (0.5, 0.5)}, "data.weights"),
        ("sas_grid", {"weights": (0.2,) * 9}, "data.weights"),
        ("sas_grid", {"weights": (-0.1, 0.2, 0.3, 0.2, 0.0, 0.15, 0.0, 0.2, 0.05)}, "data.weights"),
        ("gmm_2", {"weights": (0.5, 0.25, 0.25)}, "data.weights"),
        ("sas_grid", {"data_alpha": 0.0}, "data.data_alpha"),
        ("sas_grid", {"data_alpha": 2.5}, "data.data_alpha"),
        ("sas", {"data_alpha": -1.0}, "data.data_alpha"),
        ("skewed_levy", {"data_alpha": 2.0}, "data.data_alpha"),
        ("sas_grid", {"std": 0.0}, "data.std"),
        ("gmm_grid", {"std": -0.1}, "data.std"),
        ("rose", {"std": float("nan")}, "data.std"),
        ("gmm_2", {"theta": 0.0}, "data.theta"),
        ("gmm_grid", {"nsamples": 0}, "data.nsamples"),
        ("gmm_grid", {"isotropic": "yes"}, "data.isotropic"),
        ("no_such_set", {}, "data.dataset"),
    ],
)
def test_config_errors_name_the_key(dataset, overrides, key):
    p = dataclasses.replace(params("sas_grid"), dataset=dataset, **overrides)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as info:
        check_params(p)
    assert info.value.key == key
    assert "\n" not in str(info.value)
    if dataset in DATASETS:
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            DATASETS.get(dataset)(p)


def test_weights_summing_to_one_within_tolerance_pass():
    w = (0.1 + 5e-7,) + (0.9 / 8,) * 8
    check_params(params("gmm_grid", weights=w))


def test_default_params_are_valid():
    check_params(ToyParams())


# ------------------------------------------------------------------------------------------------
# Shapes
# ------------------------------------------------------------------------------------------------


def test_checkerboard_points_lie_in_dark_squares():
    x = make_dataset(params("checkerboard")).sample(32000, gen()).double()
    assert (x.abs() < 4).all()
    col, row = torch.floor((x[:, 0] + 4) / 2), torch.floor((x[:, 1] + 4) / 2)
    assert ((col + row) % 2 == 0).all()
    # all eight dark squares are used
    assert len(torch.unique(col * 4 + row)) == 8


def test_olympic_rings_points_near_a_circle():
    std = 0.02
    data = make_dataset(params("olympic_rings", std=std))
    x = data.sample(20000, gen())
    gap = (torch.cdist(x, data.centres) - data.radius).abs()
    assert (gap.min(dim=1).values < 6 * std).all()
    # every ring is drawn: points close to ring k, far from its centre
    on_ring = (gap < 3 * std).sum(0)
    assert (on_ring > 20000 / 5 * 0.8).all()
    assert data.modes is None
    assert len(data.centres) == 5


def test_rose_points_on_the_curve():
    std = 1e-3
    x = make_dataset(params("rose", std=std)).sample(20000, gen()).double()
    radius, angle = x.norm(dim=1), torch.atan2(x[:, 1], x[:, 0])
    curve = shapes.ROSE_RADIUS * torch.cos(shapes.ROSE_PETALS * angle).abs()
    far_from_centre = radius > 1.0  # near the centre the noise moves the polar angle a lot
    assert (radius - curve)[far_from_centre].abs().max().item() < 0.05


def test_swiss_roll_is_standardised():
    x = make_dataset(params("swiss_roll", std=1e-3)).sample(32000, gen())
    assert x.mean(0).abs().max().item() < 0.05
    assert x.std(0).sub(1.0).abs().max().item() < 0.05


def test_fractal_tree_points_on_branches():
    start, end = shapes.tree_segments()
    assert len(start) == 2**shapes.TREE_DEPTH - 1
    # every branch but the trunk starts where another one ends
    assert ((start[1:, None, :] - end[None]).norm(dim=-1).min(dim=1).values < 1e-9).all()
    std = 1e-3
    x = make_dataset(params("fractal_tree", std=std)).sample(5000, gen()).double()
    assert (x.abs() < 4).all()
    d = end - start
    t = (((x[:, None, :] - start) * d).sum(-1) / (d * d).sum(-1)).clamp(0, 1)
    dist = (x[:, None, :] - (start + t[..., None] * d)).norm(dim=-1).min(dim=1).values
    assert dist.max().item() < 6 * std


def test_the_default_data_set_is_the_same_bytes_on_every_machine(tmp_path):
    """The digests of the default params' train.npy and test.npy (sas_grid), made on an AMD EPYC.
    The points are computed in float64 and rounded to float32 once: a CPU whose vectorised float64
    functions differ in the last bit (Intel's and AMD's code paths can) rounds to the same
    float32 bytes, so a fresh clone's data matches the committed dvc.lock anywhere. A change to
    how the data is drawn must change these digests knowingly (and dvc.lock with them)."""
    import hashlib

    from genlib.config import load
    from genlib.pipeline.paths import Paths
    from genlib.pipeline.prepare import prepare_data

    from test_config import ROOT

    paths = Paths(tmp_path)
    before = torch.get_num_threads()
    for threads in (1, 2):
        torch.set_num_threads(threads)  # elementwise work: the thread count must not matter either
        prepare_data(load(ROOT / "params.yaml", {"run.progress": "never"}), paths)
        digest = {f: hashlib.sha256((paths.prepared / f).read_bytes()).hexdigest() for f in ("train.npy", "test.npy")}
        assert digest == {
            "train.npy": "33859dd7cb90417c502ebfe4776acb329d25acf890778a24b967f1fe9defc826",
            "test.npy": "3e40a8acf7ea186de3cef15be982680dbcecb7416aec1163381c1a82871c02eb",
        }, threads
    torch.set_num_threads(before)
