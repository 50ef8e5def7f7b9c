"""ScoreGAN (Franceschi et al., NeurIPS 2023): the generator's direction with exact score models,
the teacher stage and its key, the refusals of a missing or mismatched teacher, and a tiny run
through the stages."""
import json

import pytest
import torch
from torch import nn

from genlib.config import build_method, load
from genlib.errors import ConfigError, DataError
from genlib.methods.cosine import ve_sigma
from genlib.methods.ddpm import DDPM
from genlib.methods.diffusion_spec import DDPMParams
from genlib.methods.schedules import cosine_alpha_bar, cosine_alpha_bar_continuous
from genlib.io import load_torch, save_torch
from genlib.pipeline.evaluate import evaluate_stage
from genlib.pipeline.generate import generate_stage
from genlib.pipeline.keys import stage_params
from genlib.pipeline.paths import Paths
from genlib.pipeline.prepare import prepare_data
from genlib.pipeline.report import report_stage
from genlib.pipeline.train import train_stage
from genlib.pipeline.train_teacher import train_teacher_stage

from test_config import ROOT
from test_edm import ExactF

TINY = {
    "data.nsamples": 512, "data.ntest": 256, "training.epochs": 2, "training.batch_size": 256,
    "eval.nsamples": 256, "eval.batch_size": 256, "eval.reverse_steps": 4, "eval.n_exact": 100,
    "eval.n_mmd": 100, "eval.n_projections": 10, "run.progress": "never", "run.log_every": 1,
    "scoregan.n_score": 2, "scoregan.g_units": 32, "model.nunits": 32,
}


def scoregan(over=None):
    cfg = load(ROOT / "params.yaml", {"method": "scoregan", **(over or {})})
    return cfg, build_method(cfg)


def test_the_generator_moves_towards_the_data_with_exact_score_models():
    # Data N(2, 0.5^2) and generated N(0, 0.5^2) per coordinate, both scores exact: the score
    # difference is (2 - 0) / (0.25 + sigma^2) > 0 everywhere, so a generator step raises the
    # generated mean. With the same score model for both, the direction is 0.
    _, m = scoregan({"scoregan.weight_data": 1.0, "scoregan.weight_gen": 1.0})
    teacher = m.teacher_method
    m.bind_teacher(ExactF(teacher, s=0.5, mean=2.0))
    fake = ExactF(teacher, s=0.5, mean=0.0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4096, 2, generator=g) * 0.5
    x_noisy, sigma = m.noisy(x, g)
    gap = m.score_gap(fake, x_noisy, sigma)
    # The generator descends <x~, gap>: it moves along -gap, which must point to +2.
    assert (-gap > 0).float().mean() > 0.999
    expected = -(2.0 / (0.25 + sigma**2) * sigma)[:, None].expand(-1, 2)
    assert torch.allclose(gap, expected, rtol=1e-4, atol=1e-5)
    same = m.score_gap(m.data_score, x_noisy, sigma)
    assert same.abs().max() < 1e-5


class ExactEps(nn.Module):
    """DDPM's ``eps_theta(x_t, t)`` exact for Gaussian data ``N(mean, s^2 I)``: with
    ``x_t = a x0 + b eps`` (``a^2 = alpha_bar(t)``, ``b^2 = 1 - a^2``), ``E[eps | x_t] = b (x_t - a mean) / (a^2 s^2 + b^2)``."""

    def __init__(self, s: float, mean: float) -> None:
        super().__init__()
        self.s, self.mean = s, mean

    def forward(self, x_t, t):
        ab = cosine_alpha_bar_continuous(t.to(torch.float64)).view(-1, *([1] * (x_t.dim() - 1)))
        a, b = ab.sqrt(), (1 - ab).sqrt()
        return (b * (x_t - a * self.mean) / (ab * self.s**2 + b**2)).float()


def test_a_ddpm_model_is_a_denoiser_through_edm_table_1():
    m = DDPM(DDPMParams(diffusion_steps=100))
    # time_of_sigma inverts the spec's sigma(t), and at t = k / T alpha_bar is the schedule's.
    t = torch.linspace(0.01, 1.0, 100, dtype=torch.float64)
    sigma = torch.tensor([ve_sigma(float(v)) for v in t], dtype=torch.float64)
    assert torch.allclose(m.time_of_sigma(sigma).double(), t, atol=1e-6)
    assert torch.allclose(1 / (1 + sigma**2), cosine_alpha_bar(100)[1:], rtol=1e-9)
    # With the exact eps network, D(x; sigma) is the exact posterior mean of N(2, 0.5^2) data.
    g = torch.Generator().manual_seed(0)
    x = torch.randn(512, 2, generator=g) * 3
    for level in (0.05, 0.5, 3.0, 40.0):
        d = m.denoise(ExactEps(0.5, 2.0), x, level)
        assert torch.allclose(d, 2 + 0.25 / (0.25 + level**2) * (x - 2), rtol=1e-4, atol=1e-4 * max(1, level))
    # denoising_pair's target is the eps the exact network returns on the pair's input.
    x0 = 2 + 0.5 * torch.randn(512, 2, generator=g)
    s = torch.full((512,), 0.7)
    eps = torch.randn(512, 2, generator=g)
    net_in, time, target = m.denoising_pair(x0, x0 + 0.7 * eps, s)
    assert torch.allclose(target, eps, atol=1e-5) and torch.allclose(net_in, (x0 + 0.7 * eps) / (1 + 0.49) ** 0.5)
    assert torch.allclose(time, m.time_of_sigma(s))


def test_a_ddpm_teacher_moves_the_generator_towards_the_data():
    _, m = scoregan({"scoregan.teacher.method": "ddpm"})
    assert m.teacher_method.name == "ddpm"
    m.bind_teacher(ExactEps(0.5, 2.0))
    g = torch.Generator().manual_seed(0)
    x_noisy, sigma = m.noisy(torch.randn(4096, 2, generator=g) * 0.5, g)
    gap = m.score_gap(ExactEps(0.5, 0.0), x_noisy, sigma)
    expected = -(2.0 / (0.25 + sigma**2) * sigma)[:, None].expand(-1, 2)
    assert torch.allclose(gap, expected, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("key, value, bound", [("scoregan.sigma_max", 100.0, "<= 64.16"), ("scoregan.sigma_min", 0.01, ">= 0.02496")])
def test_noise_levels_outside_a_ddpm_teacher_are_refused_at_the_door(key, value, bound):
    with pytest.raises(ConfigError, match=rf"{key}.*{value}.*a number {bound}.*ddpm teacher"):
        load(ROOT / "params.yaml", {"method": "scoregan", "scoregan.teacher.method": "ddpm", key: value})
    load(ROOT / "params.yaml", {"method": "scoregan", key: value})  # an EDM teacher covers every level


def test_the_noise_levels_lie_on_the_rho_spacing():
    _, m = scoregan()
    s = m.noise_levels(10000, torch.Generator().manual_seed(0))
    assert s.min() >= 0.1 - 1e-6 and s.max() <= 10.0 + 1e-6
    roots = s ** (1 / 3)  # uniform between 0.1^(1/3) and 10^(1/3): mean within 4 standard errors
    lo, hi = 0.1 ** (1 / 3), 10.0 ** (1 / 3)
    assert abs(roots.mean().item() - (lo + hi) / 2) < 4 * (hi - lo) / (12 * 10000) ** 0.5


def test_the_teacher_stage_keys_only_the_teacher():
    base = load(ROOT / "params.yaml", {"method": "ddpm"})
    other = load(ROOT / "params.yaml", {"method": "dlpm"})
    assert stage_params(base, "train_teacher") == stage_params(other, "train_teacher") == {"teacher": None}
    cfg, _ = scoregan()
    key = stage_params(cfg, "train_teacher")
    assert key["method"] == "edm" and key == stage_params(load(ROOT / "params.yaml", {"method": "edm"}), "train")
    assert stage_params(scoregan({"scoregan.lr_g": 1e-3})[0], "train_teacher") == key
    longer = stage_params(scoregan({"scoregan.teacher.training.epochs": 7})[0], "train_teacher")
    assert longer != key and longer["training"]["epochs"] == 7


def test_a_missing_or_mismatched_teacher_is_one_line(tmp_path):
    cfg = load(ROOT / "params.yaml", {**TINY, "method": "scoregan", "scoregan.teacher.training.epochs": 1})
    paths = Paths(tmp_path)
    prepare_data(cfg, paths)
    with pytest.raises(DataError, match=r"data/teacher/checkpoint.pt: no teacher model.*train_teacher") as info:
        train_stage(cfg, paths)
    assert "\n" not in str(info.value)
    train_teacher_stage(cfg, paths)
    ckpt = paths.for_teacher().checkpoint
    body = load_torch(ckpt)
    save_torch(ckpt, {**body, "data_shape": [3]})
    with pytest.raises(DataError, match=r"a teacher of data shape \[3\], not this data's \[2\]"):
        train_stage(cfg, paths)


def test_a_method_without_a_teacher_writes_the_same_marker(tmp_path):
    written = []
    for method in ("ddpm", "gan"):
        paths = Paths(tmp_path / method)
        train_teacher_stage(load(ROOT / "params.yaml", {"method": method}), paths)
        written.append((paths.teacher / "none.json").read_bytes())
        assert [p.name for p in paths.teacher.iterdir()] == ["none.json"]
    assert written[0] == written[1] and json.loads(written[0])["teacher"] is None


@pytest.mark.parametrize("teacher", ["edm", "ddpm"])
def test_scoregan_runs_through_the_stages(tmp_path, teacher):
    cfg = load(ROOT / "params.yaml", {**TINY, "method": "scoregan", "scoregan.teacher.training.epochs": 2,
                                      "scoregan.teacher.method": teacher})
    paths = Paths(tmp_path)
    prepare_data(cfg, paths)
    teacher = train_teacher_stage(cfg, paths)
    assert teacher["train_steps"] == 4 and (tmp_path / "data" / "teacher" / "curves" / "plots" / "metrics" / "loss.tsv").is_file()
    assert not (tmp_path / "metrics" / "train.json").exists()  # the teacher's metrics stay in its folder
    info = train_stage(cfg, paths)
    assert info["train_steps"] == 4
    curves = {p.stem for p in (paths.train_log / "plots" / "metrics").glob("*.tsv")}
    assert {"loss", "score_gap", "grad_norm"} <= curves
    generate_stage(cfg, paths)
    metrics = evaluate_stage(cfg, paths)
    assert metrics["network_evals"] == 1 and metrics["w1_sliced"] == metrics["w1_sliced"]
    report_stage(cfg, paths)
