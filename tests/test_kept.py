"""Weights kept besides the last (training.keep_every, training.select) and eval.checkpoint choosing among them."""
import numpy as np
import pytest
import torch

from genlib import io
from genlib.config import load
from genlib.errors import ConfigError, DataError
from genlib.pipeline.keys import STAGES, stage_params, train_params
from genlib.pipeline.paths import Paths
from genlib.pipeline.prepare import prepare_data
from genlib.pipeline.train import train_stage
from genlib.pipeline.trained import load_trained

from test_config import ROOT

# 512 training points in batches of 256: 2 steps an epoch, 12 steps; evaluated every 2, kept every 4.
TINY = {"method": "ddpm", "ddpm.diffusion_steps": 10, "eval.reverse_steps": 10, "data.nsamples": 768, "data.ntest": 200,
        "data.nval": 256, "training.epochs": 6, "training.batch_size": 256, "run.log_every": 2, "run.progress": "never",
        "run.device": "cpu", "run.threads": 1, "training.eval_every": 2, "training.eval_nsamples": 200,
        "training.eval_reverse_steps": 10}
KEEP = {"training.keep_every": 4, "training.select": "w1_sliced"}


@pytest.fixture(scope="module")
def trained_runs(tmp_path_factory):
    """The same training with and without kept weights: {"plain": paths, "kept": paths}."""
    out = {}
    for name, extra in (("plain", {}), ("kept", KEEP)):
        cfg, paths = load(ROOT / "params.yaml", {**TINY, **extra}), Paths(tmp_path_factory.mktemp(name))
        prepare_data(cfg, paths)
        train_stage(cfg, paths)
        out[name] = paths
    return out


def _curve(paths):
    lines = (paths.train_log / "plots" / "metrics" / "val_w1_sliced.tsv").read_text().splitlines()[1:]
    return [(int(step), float(value)) for step, value in (line.split("\t") for line in lines)]


def test_the_kept_weights_are_files_beside_the_same_checkpoint(trained_runs):
    plain, kept = trained_runs["plain"], trained_runs["kept"]
    assert sorted(p.name for p in (kept.model / "kept").iterdir()) == ["best.pt", "step_12.pt", "step_4.pt", "step_8.pt"]
    assert not (plain.model / "kept").exists()
    assert plain.checkpoint.read_bytes() == kept.checkpoint.read_bytes()  # eval.checkpoint: last is unchanged
    curve = _curve(kept)
    best_step = min(curve, key=lambda r: r[1])[0]
    assert io.load_torch(kept.model / "kept" / "best.pt", "kept")["weights"]["step"] == best_step
    last = io.load_torch(kept.checkpoint, "checkpoint")["state"]
    at_12 = io.load_torch(kept.model / "kept" / "step_12.pt", "kept")["weights"]
    assert all(torch.equal(at_12["ema"]["0.99"][k], v) for k, v in last["ema"]["0.99"].items())


@pytest.mark.parametrize("which", ["best", 8])
def test_eval_checkpoint_loads_the_kept_weights(trained_runs, which):
    paths = trained_runs["kept"]
    cfg = load(ROOT / "params.yaml", {**TINY, **KEEP, "eval.checkpoint": which})
    net, _ = load_trained(cfg, paths)
    name = "best" if which == "best" else f"step_{which}"
    kept = io.load_torch(paths.model / "kept" / f"{name}.pt", "kept")["weights"]["ema"]["0.99"]
    assert all(torch.equal(v, kept[k]) for k, v in net.state_dict().items())
    last, _ = load_trained(cfg, paths, "last")
    assert any(not torch.equal(v, last.state_dict()[k]) for k, v in net.state_dict().items())


def test_a_step_that_was_not_kept_is_one_line(trained_runs):
    cfg = load(ROOT / "params.yaml", {**TINY, **KEEP, "eval.checkpoint": 8})
    (trained_runs["kept"].model / "kept" / "step_8.pt").rename(trained_runs["kept"].model / "kept" / "moved.pt")
    try:
        with pytest.raises(DataError, match=r"step_8.pt: no weights kept as 8"):
            load_trained(cfg, trained_runs["kept"])
    finally:
        (trained_runs["kept"].model / "kept" / "moved.pt").rename(trained_runs["kept"].model / "kept" / "step_8.pt")


def test_eval_checkpoint_keys_generate_and_evaluate_and_keeping_keys_train_alone():
    base = load(ROOT / "params.yaml", {**TINY, **KEEP})
    chosen = load(ROOT / "params.yaml", {**TINY, **KEEP, "eval.checkpoint": "best"})
    assert [s for s in STAGES if stage_params(base, s) != stage_params(chosen, s)] == ["generate", "evaluate"]
    unkept = load(ROOT / "params.yaml", TINY)
    assert [s for s in STAGES if stage_params(base, s) != stage_params(unkept, s)] == ["train"]
    assert train_params(base) == train_params(unkept)


@pytest.mark.parametrize("overrides, key", [
    ({"eval.checkpoint": "best"}, "eval.checkpoint"),                          # best without select
    ({"eval.checkpoint": 8}, "eval.checkpoint"),                               # keep_every = 0: no step kept
    ({**KEEP, "eval.checkpoint": 6}, "eval.checkpoint"),                       # not a multiple of keep_every
    ({**KEEP, "eval.checkpoint": 16}, "eval.checkpoint"),                      # beyond the 12 steps
    ({**KEEP, "eval.checkpoint": "first"}, "eval.checkpoint"),
    ({"training.keep_every": 3}, "training.keep_every"),                       # not a multiple of log_every
    ({"training.select": "mmd"}, "training.select"),                           # not among eval_metrics
    ({"training.select": "w1_sliced", "training.eval_every": 0}, "training.select"),
])
def test_bad_kept_settings_are_one_line_before_any_work(overrides, key):
    with pytest.raises(ConfigError) as err:
        load(ROOT / "params.yaml", {**TINY, **overrides})
    assert f"{key} = " in str(err.value) and "\n" not in str(err.value)


def test_a_resumed_run_keeps_what_an_uninterrupted_one_would(tmp_path):
    from family_helpers import blob, fresh_state, tiny_cfg
    from genlib.io import load_torch, save_torch
    from genlib.training.callbacks import KeepWeights
    from genlib.training.logger import NullLogger
    from genlib.training.trainer import TrainingInterrupted, train

    cfg, x = tiny_cfg("vae", epochs=3), blob()  # 8 steps an epoch, logged every 5
    method, ref = fresh_state(cfg, x)
    train(method, ref, x, cfg, NullLogger(), callbacks=[KeepWeights(5, None)])
    method, state = fresh_state(cfg, x)
    with pytest.raises(TrainingInterrupted):
        train(method, state, x, cfg, NullLogger(), callbacks=[KeepWeights(5, None)], should_stop=lambda: state.step >= 11,
              on_checkpoint=lambda s: save_torch(tmp_path / "resume.pt", {"state": s.state_dict()}))
    method, resumed = fresh_state(cfg, x, init_seed=1)
    resumed.load_state_dict(load_torch(tmp_path / "resume.pt")["state"])
    train(method, resumed, x, cfg, NullLogger(), callbacks=[KeepWeights(5, None)])
    assert sorted(ref.kept, key=lambda n: int(n[5:])) == sorted(resumed.kept, key=lambda n: int(n[5:])) == ["step_5", "step_10", "step_15", "step_20"]
    for name, weights in ref.kept.items():
        assert weights["step"] == resumed.kept[name]["step"]
        assert all(torch.equal(v, resumed.kept[name]["net"][k]) for k, v in weights["net"].items())


@pytest.mark.parametrize("data, total", [
    ({"data.max_train": 512, "data.nval": 128}, 6),  # 384 images in batches of 64
    ({"data.nval": 128}, 935),                       # MNIST's 60,000 less 128, by the built-in size
])
def test_a_kept_step_beyond_an_image_runs_length_is_one_line_at_the_door(data, total):
    images = {"method": "ddpm", "data.dataset": "mnist", "data.root": "/nonexistent", "data.image_size": 16, "model.net": "unet",
              "training.batch_size": 64, "training.epochs": 1, "training.keep_every": 2, "run.log_every": 2, **data}
    with pytest.raises(ConfigError, match=rf"eval.checkpoint = {2 * total} is not allowed; .* of the {total} steps training takes$"):
        load(ROOT / "params.yaml", {**images, "eval.checkpoint": 2 * total})
