"""The validation split, the evaluation during training and early stopping."""
import json

import numpy as np
import pytest
import torch

from genlib.config import load
from genlib.data.splits import Splits, hold_out
from genlib.errors import ConfigError
from genlib.methods.ddpm import DDPM, DDPMParams
from genlib.nets.mlp import MLP
from genlib.pipeline.keys import STAGES, stage_params, train_params
from genlib.pipeline.paths import Paths
from genlib.pipeline.prepare import prepare_data
from genlib.pipeline.evaluate import evaluate_stage
from genlib.pipeline.generate import generate_stage
from genlib.pipeline.report import report_stage
from genlib.pipeline.train import train_stage
from genlib.training.callbacks import Callback, EarlyStopping
from genlib.training.evaluation import ValidationEvaluation
from genlib.training.logger import NullLogger
from genlib.training.trainer import new_state, train

from family_helpers import blob, fresh_state
from family_helpers import tiny_cfg as family_cfg
from test_config import ROOT
from test_trainer import data

EVAL_ON = {"eval.reverse_steps": 10, "data.nval": 256, "training.eval_every": 10, "training.eval_nsamples": 300,
           "training.eval_reverse_steps": 10, "run.log_every": 5}


def test_hold_out_draws_nval_items_from_the_training_set_seeded_and_zero_changes_nothing():
    train_set = torch.arange(100.0).view(50, 2)
    splits = Splits(train=train_set, test=train_set[:3], train_labels=torch.arange(50))
    kept, val = hold_out(splits, 10, torch.Generator().manual_seed(0))
    assert val.shape == (10, 2) and kept.train.shape == (40, 2)
    rows = {tuple(r) for r in kept.train.tolist()} | {tuple(r) for r in val.tolist()}
    assert rows == {tuple(r) for r in train_set.tolist()}  # disjoint, and together the whole set
    assert torch.equal(kept.train, train_set[kept.train_labels])  # the labels follow their items, in order
    again = hold_out(splits, 10, torch.Generator().manual_seed(0))[1]
    other = hold_out(splits, 10, torch.Generator().manual_seed(1))[1]
    assert torch.equal(val, again) and not torch.equal(val, other)
    same, none = hold_out(splits, 0, torch.Generator().manual_seed(0))
    assert torch.equal(same.train, train_set) and none.shape == (0, 2)


def _cfg(**overrides):
    cfg = load(ROOT / "params.yaml", {"method": "ddpm", "ddpm.diffusion_steps": 20, "training.batch_size": 256,
                                      "training.epochs": 3, "model.dropout": 0.1, **EVAL_ON, **overrides})
    return cfg


def _train(cfg, evaluate=None, callbacks=()):
    torch.manual_seed(0)
    method = DDPM(DDPMParams(20))
    state = new_state(MLP((2,), cfg.model), cfg, 24, torch.Generator().manual_seed(0), method)
    val = data(256) + 0.01
    if evaluate is True:
        evaluate = ValidationEvaluation(method, val, cfg, torch.device("cpu"))
    return train(method, state, data(), cfg, NullLogger(), evaluate=evaluate, callbacks=callbacks)


def test_the_evaluation_during_training_leaves_the_weights_bit_identical_and_logs_its_curve():
    cfg = _cfg()  # with dropout: the evaluation must not move the global generator either
    plain, watched = _train(cfg), _train(cfg, evaluate=True)
    for name, a in plain.state_dict().items():
        if name in ("history", "torch_rng"):
            continue
        flat_a, flat_b = _tensors(a), _tensors(watched.state_dict()[name])
        assert len(flat_a) == len(flat_b) and all(torch.equal(x, y) for x, y in zip(flat_a, flat_b)), name
    assert torch.equal(plain.state_dict()["torch_rng"], watched.state_dict()["torch_rng"])
    evaluated = [(step, row["val_w1_sliced"]) for step, row in watched.history if "val_w1_sliced" in row]
    assert [step for step, _ in evaluated] == [10, 20, 24]  # every eval_every steps and the last
    assert all(np.isfinite(v) and v > 0 for _, v in evaluated)
    assert not any("val_w1_sliced" in row for _, row in plain.history)


def _tensors(tree):
    if isinstance(tree, torch.Tensor):
        return [tree]
    if isinstance(tree, dict):
        return [t for v in tree.values() for t in _tensors(v)]
    if isinstance(tree, (list, tuple)):
        return [t for v in tree for t in _tensors(v)]
    return [torch.tensor(float(tree))] if isinstance(tree, (int, float)) else []


def test_the_evaluation_is_the_same_draws_each_time_so_the_same_weights_score_the_same():
    cfg = _cfg()
    state = _train(cfg)
    evaluate = ValidationEvaluation(DDPM(DDPMParams(20)), data(256), cfg, torch.device("cpu"))
    before = torch.get_rng_state()
    first = evaluate(state)
    assert first == evaluate(state) and torch.equal(before, torch.get_rng_state())
    assert set(first) == {"val_w1_sliced"}


def test_the_validation_elbo_of_a_vae_is_logged():
    cfg = family_cfg("vae", epochs=2, overrides={"training.eval_every": 5, "training.eval_metrics": ["elbo"],
                                                  "data.nval": 100, "run.log_every": 5})
    x = blob()
    method, state = fresh_state(cfg, x)
    evaluate = ValidationEvaluation(method, blob(200, seed=1), cfg, torch.device("cpu"))
    seen = []

    class OnEval(Callback):
        def on_eval(self, step, metrics, state):
            seen.append((step, metrics))

    train(method, state, x, cfg, NullLogger(), evaluate=evaluate, callbacks=[OnEval()])
    assert [step for step, _ in seen] == [5, 10, 15, 16]
    assert all(set(m) == {"val_elbo"} and np.isfinite(m["val_elbo"]) for _, m in seen)
    assert seen[-1][1]["val_elbo"] > seen[0][1]["val_elbo"]  # training raises the bound


def test_early_stopping_stops_after_patience_evaluations_without_a_better_value():
    scores = iter([3.0, 2.0, 2.5, 2.0, 2.1, 1.0])  # the best, 2.0, at the 2nd; not beaten by the 4th, equal

    def evaluate(state):
        return {"val_w1_sliced": next(scores)}

    state = _train(_cfg(**{"training.eval_every": 5, "training.epochs": 10}), evaluate,
                   callbacks=[EarlyStopping("w1_sliced", patience=3)])
    assert state.step == 25  # evaluations at 5, 10 (best), 15, 20, 25: three without a better one
    stopper = EarlyStopping("elbo", patience=1)  # higher is better
    state.history = [[5, {"val_elbo": -3.0}], [10, {"val_elbo": -2.0}]]
    assert not stopper.should_stop(state)
    state.history.append([15, {"val_elbo": -2.5}])
    assert stopper.should_stop(state)


@pytest.mark.parametrize("overrides, key", [
    ({"training.eval_every": 7}, "training.eval_every"),                     # not a multiple of log_every
    ({"data.nval": 0}, "data.nval"),                                         # nothing to evaluate on
    ({"training.eval_metrics": ["elbo"]}, "training.eval_metrics"),          # ddpm has no ELBO
    ({"training.eval_metrics": ["fid"]}, "training.eval_metrics"),
    ({"training.eval_metrics": []}, "training.eval_metrics"),
    ({"training.patience": 2, "training.monitor": "mmd"}, "training.monitor"),  # not among eval_metrics
    ({"training.patience": 2, "training.eval_every": 0}, "training.patience"),
    ({"training.eval_reverse_steps": 50}, "training.eval_reverse_steps"),     # beyond ddpm's 20 steps
    ({"training.eval_nsamples": 1}, "training.eval_nsamples"),
    ({"data.nval": 32000}, "data.nval"),                                     # the whole training set
    ({"data.nval": -1}, "data.nval"),
])
def test_bad_evaluation_settings_are_one_line_naming_the_key(overrides, key):
    with pytest.raises(ConfigError) as err:
        _cfg(**overrides)
    assert f"{key} = " in str(err.value) and "\n" not in str(err.value)


def test_the_evaluation_keys_the_train_stage_alone_unless_early_stopping_reads_it():
    base = _cfg(**{"training.eval_every": 0})
    on = _cfg()
    changed = [stage for stage in STAGES if stage_params(base, stage) != stage_params(on, stage)]
    assert changed == ["train"]
    more_val = _cfg(**{"training.eval_every": 0, "data.nval": 100})
    # data.nval changes the prepared files, which train depends on: it keys prepare_data alone
    assert [stage for stage in STAGES if stage_params(base, stage) != stage_params(more_val, stage)] == ["prepare_data"]
    assert train_params(base) == train_params(on) and stage_params(on, "train")["training"]["eval_nsamples"] == 300
    for key in (stage_params(on, "train"), train_params(_cfg(**{"training.patience": 3}))):
        assert json.loads(json.dumps(key)) == key  # as the key file reads back (lists, not tuples)
    stopping = _cfg(**{"training.patience": 3})
    assert train_params(stopping) != train_params(on) and train_params(stopping)["eval"] == {"ema": 0.99}
    assert stage_params(stopping, "generate") != stage_params(on, "generate")


def test_the_train_stage_writes_the_validation_curve_and_the_same_checkpoint_bytes(tmp_path):
    tiny = {"method": "ddpm", "ddpm.diffusion_steps": 10, "data.nsamples": 768, "data.ntest": 200, "training.epochs": 2,
            "training.batch_size": 256, "run.progress": "never", "run.device": "cpu", "run.threads": 1, **EVAL_ON,
            "eval.nsamples": 200, "eval.batch_size": 200, "eval.n_exact": 100, "eval.n_mmd": 100, "eval.n_projections": 10}
    checkpoints = []
    for every in (0, 10):
        cfg = load(ROOT / "params.yaml", {**tiny, "training.eval_every": every})
        paths = Paths(tmp_path / str(every))
        prepare_data(cfg, paths)
        assert np.load(paths.prepared / "val.npy").shape == (256, 2) and np.load(paths.prepared / "train.npy").shape == (512, 2)
        info = train_stage(cfg, paths)
        assert info["stopped_early"] is False and info["train_steps"] == 4
        checkpoints.append(paths.checkpoint.read_bytes())
    curve = (paths.train_log / "plots" / "metrics" / "val_w1_sliced.tsv").read_text().splitlines()
    assert [line.split("\t")[0] for line in curve[1:]] == ["4"]  # 4 steps: only the last is evaluated
    assert checkpoints[0] == checkpoints[1]  # generate and evaluate do not rerun
    generate_stage(cfg, paths)
    evaluate_stage(cfg, paths)
    page = report_stage(cfg, paths).read_text()
    assert "Validation w1_sliced during training" in page and (paths.report / "val_w1_sliced.png").is_file()
