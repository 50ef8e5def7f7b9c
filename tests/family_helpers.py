"""Checks every method with networks of its own (VAE, hVAE, GAN) passes, at the trainer and the
pipeline level."""
import dataclasses

import torch

from genlib.pipeline.evaluate import evaluate_stage
from genlib.pipeline.generate import generate_stage
from genlib.pipeline.paths import Paths
from genlib.pipeline.prepare import prepare_data
from genlib.pipeline.train import train_stage
from genlib.config import load
from genlib.io import load_torch, save_torch
from genlib.registry import METHODS
from genlib.pipeline.report import report_stage
from genlib.training.logger import NullLogger
from genlib.training.trainer import TrainingInterrupted, new_state, train

from test_config import ROOT

TINY_PIPELINE = {
    "data.nsamples": 1024, "data.ntest": 400, "training.epochs": 2, "training.batch_size": 256,
    "eval.nsamples": 400, "eval.batch_size": 200, "eval.n_exact": 200, "eval.n_mmd": 200,
    "eval.n_projections": 20, "run.progress": "never", "run.log_every": 2,
}


class Recorder:
    def __init__(self):
        self.rows = []

    def log(self, step, values):
        self.rows.append((step, values))


def tiny_cfg(method, epochs, overrides=None):
    cfg = load(ROOT / "params.yaml", {"method": method, **(overrides or {})})
    return dataclasses.replace(
        cfg,
        training=dataclasses.replace(cfg.training, epochs=epochs, batch_size=256, ema_rates=(0.9, 0.99)),
        run=dataclasses.replace(cfg.run, log_every=5),
    )


def blob(n=2048, seed=0):
    """A tight Gaussian blob away from the origin: an untrained model misses it by far."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, generator=g) * 0.2 + torch.tensor([1.0, -1.0])


def fresh_state(cfg, x, init_seed=0):
    method = METHODS.get(cfg.method)(cfg.method_params)
    torch.manual_seed(init_seed)
    nets = method.networks(tuple(x.shape[1:]))
    total = cfg.training.epochs * (x.shape[0] // cfg.training.batch_size)
    return method, new_state(nets, cfg, total, torch.Generator().manual_seed(0), method)


def trained(cfg, x, logger=None, **kwargs):
    method, state = fresh_state(cfg, x)
    return method, train(method, state, x, cfg, logger or NullLogger(), **kwargs)


def assert_resume_is_exact(cfg, x, tmp_path, stop_at=13):
    """Stop at ``stop_at`` through the checkpoint hook, reload into networks initialised otherwise,
    finish: weights, EMAs, optimizer moments and the logged curve equal an uninterrupted run's."""
    ref_logger = Recorder()
    _, ref = trained(cfg, x, ref_logger)
    path = tmp_path / "resume.pt"
    method, state = fresh_state(cfg, x)
    first_logger = Recorder()
    try:
        train(method, state, x, cfg, first_logger, on_checkpoint=lambda s: save_torch(path, {"state": s.state_dict()}),
              should_stop=lambda: state.step >= stop_at - 1)
        raise AssertionError("training was not stopped")
    except TrainingInterrupted:
        pass
    method, resumed = fresh_state(cfg, x, init_seed=1)
    resumed.load_state_dict(load_torch(path)["state"])
    assert resumed.step == stop_at
    train(method, resumed, x, cfg, NullLogger())
    a, b = ref.state_dict(), resumed.state_dict()
    for name, tensor in a["net"].items():
        assert torch.equal(tensor, b["net"][name]), name
    for rate, weights in a["ema"].items():
        assert all(torch.equal(t, b["ema"][rate][n]) for n, t in weights.items()), rate
    for opt_name, opt in a["optimizer"].items():
        for i, moments in opt["state"].items():
            assert torch.equal(moments["exp_avg"], b["optimizer"][opt_name]["state"][i]["exp_avg"]), (opt_name, i)
    assert a["history"] == b["history"] and a["history"] == [[s, r] for s, r in ref_logger.rows]


def assert_seeded_sampling(method, nets, data_shape=(2,)):
    draw = lambda seed: method.sample(nets, (64, *data_shape), 1, torch.Generator().manual_seed(seed))  # noqa: E731
    assert torch.equal(draw(3), draw(3))
    assert not torch.equal(draw(3), draw(4))


def run_pipeline(tmp_path, method, overrides=None):
    cfg = load(ROOT / "params.yaml", {**TINY_PIPELINE, "method": method, **(overrides or {})})
    paths = Paths(tmp_path)
    prepare_data(cfg, paths)
    train_stage(cfg, paths)
    info = generate_stage(cfg, paths)
    metrics = evaluate_stage(cfg, paths)
    report_stage(cfg, paths)
    return cfg, paths, info, metrics
