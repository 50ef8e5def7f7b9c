"""The 2D validation metrics of the mixtures' modes: tail_error and mode_ratio_worst during training."""
import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from genlib.config import load
from genlib.errors import ConfigError
from genlib.metrics.modes import assigned_weights, mode_weight_error, tail_error
from genlib.pipeline.paths import Paths
from genlib.pipeline.prepare import prepare_data
from genlib.pipeline.train import train_stage
from genlib.training.callbacks import EarlyStopping
from genlib.training.evaluation import ValidationEvaluation

from test_config import ROOT

ON = {"method": "ddpm", "ddpm.diffusion_steps": 10, "eval.reverse_steps": 10, "data.dataset": "gmm_grid", "data.n_mixture": 4,
      "data.weights": [0.1, 0.2, 0.3, 0.4], "data.nsamples": 1024, "data.ntest": 200, "data.nval": 512,
      "training.epochs": 2, "training.batch_size": 256, "training.eval_every": 2, "training.eval_nsamples": 400,
      "training.eval_reverse_steps": 10, "training.eval_metrics": ["tail_error", "mode_ratio_worst"], "training.ema_rates": [],
      "eval.ema": None, "run.log_every": 2, "run.progress": "never", "run.device": "cpu", "run.threads": 1}


class Replay:
    """A method whose samples are the points it is given (the metrics' inputs, known to the test)."""

    def __init__(self, points):
        self.points = points

    def sample(self, net, shape, steps, generator, options):
        return self.points[: shape[0]]


def scores(points, val, modes, metrics=("tail_error", "mode_ratio_worst")):
    cfg = load(ROOT / "params.yaml", {**ON, "training.eval_nsamples": points.shape[0], "training.eval_metrics": list(metrics)})
    evaluate = ValidationEvaluation(Replay(points), val, cfg, torch.device("cpu"), modes)
    return evaluate(SimpleNamespace(net=nn.Identity()))


MODES = torch.tensor([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]], dtype=torch.float64)


def mixture(n, weights, seed):
    g = torch.Generator().manual_seed(seed)
    labels = torch.multinomial(torch.tensor(weights), n, replacement=True, generator=g)
    return (MODES[labels] + 0.1 * torch.randn(n, 2, generator=g, dtype=torch.float64)).float()


def test_the_mode_metrics_are_evaluates_against_the_validation_points():
    val = mixture(2000, [0.1, 0.2, 0.3, 0.4], 0)
    same = scores(val, val, MODES)  # the set itself
    assert same["val_tail_error"] == 0.0 and same["val_mode_ratio_worst"] == pytest.approx(1.0, abs=1e-12)
    # A generator that drops the rarest mode and puts its mass on the commonest: the worst ratio is 0.
    dropped = mixture(2000, [0.0, 0.2, 0.3, 0.5], 1)
    got = scores(dropped, val, MODES)
    assert got["val_mode_ratio_worst"] == 0.0
    assert got["val_tail_error"] == tail_error(dropped, val, MODES)["tail_error"]
    # Wider components: heavier tails than the validation points', which the tail error sees.
    wide = (MODES[torch.arange(2000) % 4] + 0.3 * torch.randn(2000, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)).float()
    got = scores(wide, val, MODES)
    assert got["val_tail_error"] > 0.8  # log(3)^2 = 1.2 at each quantile for a 3x wider Gaussian, less where modes meet
    assert got["val_mode_ratio_worst"] == mode_weight_error(wide, MODES, assigned_weights(val, MODES))["mode_ratio_worst"]


def test_without_modes_the_tail_error_is_measured_from_the_validation_mean():
    val = mixture(1000, [0.25] * 4, 3)
    assert scores(val, val, None, ["tail_error"]) == {"val_tail_error": 0.0}
    assert scores(val * 2, val, None, ["tail_error"])["val_tail_error"] == pytest.approx(math.log(2) ** 2, rel=0.05)


def test_mode_ratio_worst_needs_a_set_with_modes_at_the_door():
    load(ROOT / "params.yaml", ON)
    with pytest.raises(ConfigError, match=r"training\.eval_metrics = .*: w1_sliced, mmd, tail_error$"):
        load(ROOT / "params.yaml", {**ON, "data.dataset": "swiss_roll"})


def test_early_stopping_on_the_worst_ratio_takes_half_and_twice_as_equally_bad():
    badness = EarlyStopping("mode_ratio_worst", 1).badness
    assert badness(0.5) == pytest.approx(badness(2.0)) and badness(1.0) == 0.0 and badness(0.0) == math.inf


def test_the_train_stage_logs_the_mode_curves_from_the_prepared_modes(tmp_path):
    cfg, paths = load(ROOT / "params.yaml", ON), Paths(tmp_path)
    prepare_data(cfg, paths)
    assert len((paths.prepared / "modes.json").read_text()) > 10
    train_stage(cfg, paths)
    for name in ("val_tail_error", "val_mode_ratio_worst"):
        rows = (paths.train_log / "plots" / "metrics" / f"{name}.tsv").read_text().splitlines()[1:]
        assert [int(r.split("\t")[0]) for r in rows] == [2, 4]  # 512 training points, 2 steps an epoch
        assert all(math.isfinite(float(r.split("\t")[1])) for r in rows)
