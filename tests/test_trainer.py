"""The training loop: learning, EMA, NaN recovery (bounded), checkpoints that load safely."""
import dataclasses

import pytest
import torch

from genlib.config import load
from genlib.io import load_torch, save_torch
from genlib.methods.ddpm import DDPM, DDPMParams
from genlib.nets.mlp import MLP
from genlib.training.logger import NullLogger
from genlib.training.ema import EMA, warmed_decay
from genlib.training.trainer import NonFiniteLoss, new_state, train

from test_config import ROOT


def tiny_cfg(epochs=3, retries=3):
    cfg = load(ROOT / "params.yaml", {"method": "ddpm"})
    return dataclasses.replace(
        cfg,
        training=dataclasses.replace(cfg.training, epochs=epochs, batch_size=256, nan_retries=retries),
        run=dataclasses.replace(cfg.run, log_every=5),
    )


def data(n=2048):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 2, generator=g) * 0.1 + torch.tensor([1.0, -1.0])


class Recorder:
    def __init__(self):
        self.rows = []

    def log(self, step, values):
        self.rows.append((step, values))

    def close(self):
        pass


def run(method, cfg, x, logger=None, seed=0):
    torch.manual_seed(seed)
    net = MLP((2,))
    total = cfg.training.epochs * (x.shape[0] // cfg.training.batch_size)
    state = new_state(net, cfg, total, torch.Generator().manual_seed(seed), method)
    return train(method, state, x, cfg, logger or NullLogger())


def test_loss_decreases_and_is_logged():
    rec = Recorder()
    run(DDPM(DDPMParams(50)), tiny_cfg(epochs=15), data(), rec)
    losses = [v["loss"] for _, v in rec.rows]
    assert rec.rows[-1][0] == 15 * 8
    assert set(rec.rows[0][1]) == {"loss", "grad_norm", "lr"}
    assert sum(losses[-4:]) / 4 < 0.8 * sum(losses[:4]) / 4


def test_same_seed_same_weights():
    cfg = tiny_cfg(epochs=1)
    a = run(DDPM(DDPMParams(50)), cfg, data())
    b = run(DDPM(DDPMParams(50)), cfg, data())
    for p, q in zip(a.net.parameters(), b.net.parameters()):
        assert torch.equal(p, q)


class FlakyDDPM(DDPM):
    """Returns a NaN loss on the calls listed in ``bad``."""

    def __init__(self, bad):
        super().__init__(DDPMParams(50))
        self.calls, self.bad = 0, set(bad)

    def loss(self, net, x0, generator):
        self.calls += 1
        value = super().loss(net, x0, generator)
        return value * float("nan") if self.calls in self.bad else value


def test_nan_loss_restores_last_good_state_and_finishes():
    cfg = tiny_cfg(epochs=2)
    state = run(FlakyDDPM(bad={7, 12}), cfg, data())
    assert state.restores == 2
    assert state.step == 16
    assert all(torch.isfinite(p).all() for p in state.net.parameters())


def test_persistent_nan_stops_with_a_clear_error():
    cfg = tiny_cfg(epochs=2, retries=2)
    with pytest.raises(NonFiniteLoss, match=r"non-finite .* 2 restores .*nan_retries = 2"):
        run(FlakyDDPM(bad=set(range(7, 1000))), cfg, data())


def test_ema_tracks_weights():
    state = run(DDPM(DDPMParams(50)), tiny_cfg(epochs=1), data())
    ema = state.ema.models[0.99]
    diffs = [(p - q).abs().max() for p, q in zip(ema.parameters(), state.net.parameters())]
    assert max(diffs) > 0  # it lags behind...
    assert not any(p.requires_grad for p in ema.parameters())


def test_warmed_decay_is_the_tensorflow_num_updates_rule():
    assert warmed_decay(0.99, 1) == pytest.approx(2 / 11)
    assert warmed_decay(0.99, 80) == pytest.approx(0.9)
    assert warmed_decay(0.99, 889) < 0.99 and warmed_decay(0.99, 890) == 0.99  # (10 r - 1) / (1 - r)
    assert warmed_decay(0.995, 10**6) == 0.995


def test_ema_follows_the_warmed_recursion():
    """Weights set to a known sequence: each EMA is the recursion with the warmed decays."""
    net = torch.nn.Linear(3, 1, bias=False)
    ema = EMA(net, (0.9, 0.995))
    values = torch.linspace(-1.0, 2.0, 30, dtype=torch.float64)
    expected = {rate: net.weight.detach().double().clone() for rate in ema.rates}
    with torch.no_grad():
        for step, value in enumerate(values, start=1):
            net.weight.fill_(float(value))
            ema.update(step)
            for rate in ema.rates:
                d = min(rate, (1 + step) / (10 + step))
                expected[rate] = d * expected[rate] + (1 - d) * float(value)
    for rate in ema.rates:
        assert torch.allclose(ema.models[rate].weight.double(), expected[rate], atol=1e-6), rate


def test_ema_is_near_the_trained_weights_after_a_few_steps():
    """16 steps of a fresh network: with the warm-up the EMA has left the initial weights (their
    share is prod (1 + n) / (10 + n) < 1e-5 after 16 steps; a fixed 0.99 would keep 85% of them)."""
    cfg = tiny_cfg(epochs=2)
    torch.manual_seed(0)
    init = [p.detach().clone() for p in MLP((2,)).parameters()]
    state = run(DDPM(DDPMParams(50)), cfg, data())
    assert state.step == 16
    trained = torch.cat([p.flatten() for p in state.net.parameters()])
    moved = (trained - torch.cat([p.flatten() for p in init])).norm()
    lag = (torch.cat([p.flatten() for p in state.ema.models[0.99].parameters()]) - trained).norm()
    assert lag < 0.1 * moved, (float(lag), float(moved))  # 0.011 here; about 0.85 without the warm-up


def test_checkpoint_round_trip_weights_only(tmp_path):
    cfg = tiny_cfg(epochs=1)
    state = run(DDPM(DDPMParams(50)), cfg, data())
    path = tmp_path / "ckpt.pt"
    save_torch(path, {"state": state.state_dict(), "config": cfg.to_dict()})
    body = load_torch(path)  # weights_only=True inside
    fresh = run(DDPM(DDPMParams(50)), dataclasses.replace(cfg), data(), seed=1)
    fresh.load_state_dict(body["state"])
    for p, q in zip(fresh.net.parameters(), state.net.parameters()):
        assert torch.equal(p, q)
    assert fresh.step == state.step and torch.equal(fresh.generator.get_state(), state.generator.get_state())


def test_lr_schedules():
    from genlib.training.lr import lr_lambda

    assert [lr_lambda("none", 100, 0, 10, 0.5, 0.0)(s) for s in (0, 99)] == [1.0, 1.0]
    step = lr_lambda("step", 100, 0, 10, 0.5, 0.0)
    assert [step(0), step(9), step(10), step(25)] == [1.0, 1.0, 0.5, 0.25]
    cos = lr_lambda("cosine", 110, 10, 10, 0.5, 0.1)
    assert cos(0) == 0.1 and cos(9) == 1.0  # linear warmup over 10 steps
    assert abs(cos(10) - 1.0) < 1e-12 and abs(cos(60) - 0.55) < 1e-12 and abs(cos(110) - 0.1) < 1e-12


def test_grad_clip_caps_the_logged_update_norm():
    # With clipping the pre-clip norm is still what is logged, and training stays finite.
    cfg = tiny_cfg(epochs=1)
    cfg = dataclasses.replace(cfg, training=dataclasses.replace(cfg.training, grad_clip=1e-3))
    rec = Recorder()
    state = run(DDPM(DDPMParams(50)), cfg, data(), rec)
    assert all(v["grad_norm"] > 1e-3 for _, v in rec.rows)
    assert all(torch.isfinite(p).all() for p in state.net.parameters())


def test_curve_logger_survives_a_queue_neighbour_removing_the_signal_file(tmp_path, monkeypatch):
    # Two `dvc queue` workers share DVC_ROOT and so dvclive's step signal file; the one that
    # closes second used to crash on removing a file the first had already removed.
    from genlib.training.logger import Loggers

    def removed_by_neighbour():
        raise FileNotFoundError(2, "No such file or directory", str(tmp_path / ".dvc/tmp/exps/run/DVCLIVE_STEP_COMPLETED"))

    monkeypatch.setattr("dvclive.live.cleanup_dvclive_step_completed", removed_by_neighbour)
    logger = Loggers(["dvclive"], tmp_path / "train")
    logger.log(1, {"loss": 1.0})
    logger.close()
    assert (tmp_path / "train" / "plots" / "metrics" / "loss.tsv").is_file()


def test_nan_just_before_a_checkpoint_is_never_saved():
    # The loop checks the losses only at sync steps (logged steps, checkpoints): a NaN at step 3
    # is found at the checkpoint of step 4, which then restores step 0 and redoes the steps
    # instead of saving the broken weights.
    saved = []
    torch.manual_seed(0)
    cfg = tiny_cfg(epochs=1)
    method = FlakyDDPM(bad={3})
    state = new_state(MLP((2,)), cfg, 8, torch.Generator().manual_seed(0), method)
    train(method, state, data(), cfg, NullLogger(), checkpoint_every=4,
          on_checkpoint=lambda s: saved.append((s.step, [p.clone() for p in s.net.parameters()])))
    assert state.restores == 1 and [step for step, _ in saved] == [4]
    assert all(torch.isfinite(p).all() for _, params in saved for p in params)


def _rows(path):
    lines = path.read_text().splitlines()
    assert lines[0].split("\t") == ["step", path.stem]
    return [line.split("\t") for line in lines[1:]]


def test_curves_can_be_read_while_training_runs_and_stay_whole(tmp_path):
    # The curves are copied into place as training runs (not only at the end), each file whole:
    # a reader (dvc plots show, a notebook) sees every row logged before the last publish.
    from genlib.training.logger import CurveLogger, LogFolder

    out = tmp_path / "plots" / "train"
    logger = CurveLogger(LogFolder(out), publish_every=0.0)
    for step in range(1, 6):
        logger.log(step * 10, {"loss": 1.0 / step, "lr": 0.1})
        loss = out / "plots" / "metrics" / "loss.tsv"
        rows = _rows(loss)
        assert [int(r[0]) for r in rows] == [10 * s for s in range(1, step + 1)]
        assert float(rows[-1][1]) == 1.0 / step
    # Killed here (no close): what is in place is whole; a later run replaces it entirely.
    assert not list(out.rglob("*.tmp"))
    again = CurveLogger(LogFolder(out), publish_every=0.0)
    again.log(10, {"loss": 2.0})
    again.close()
    again.folder.commit()
    assert sorted(p.name for p in (out / "plots" / "metrics").glob("*.tsv")) == ["loss.tsv"]
    assert [float(r[1]) for r in _rows(out / "plots" / "metrics" / "loss.tsv")] == [2.0]


def test_curves_are_not_copied_more_often_than_asked(tmp_path):
    from genlib.training.logger import CurveLogger, LogFolder

    out = tmp_path / "train"
    logger = CurveLogger(LogFolder(out), publish_every=3600.0)
    logger.log(1, {"loss": 1.0})
    assert not (out / "plots" / "metrics" / "loss.tsv").exists()  # the first copy waits an hour
    logger.close()
    logger.folder.commit()
    assert len(_rows(out / "plots" / "metrics" / "loss.tsv")) == 1
