"""Callbacks: a plugin's hooks are called by the loop, and a stop it asks for ends training."""
import textwrap

import pytest
import torch

from genlib.config import load
from genlib.errors import ConfigError
from genlib.methods.ddpm import DDPM, DDPMParams
from genlib.nets.mlp import MLP
from genlib.pipeline.keys import train_params
from genlib.training.callbacks import build_callbacks
from genlib.training.logger import NullLogger
from genlib.training.trainer import new_state, train

from test_config import ROOT
from test_trainer import data

CALLBACK_PLUGIN = '''
"""A callback of the user's own: notes every hook called; stops at a step when told to."""
from genlib.registry import CALLBACKS
from genlib.training.callbacks import Callback

CALLS = []
STOP_AT = [None]


@CALLBACKS.register("noting_callback")
class Noting(Callback):
    def __init__(self, cfg):
        self.epochs = cfg.training.epochs

    def on_train_start(self, state):
        CALLS.append(("start", state.step))

    def on_epoch_end(self, epoch, state):
        CALLS.append(("epoch", epoch, state.step))

    def on_log(self, step, row, state):
        CALLS.append(("log", step, sorted(row)))

    def should_stop(self, state):
        return STOP_AT[0] is not None and state.step >= STOP_AT[0]

    def on_train_end(self, state):
        CALLS.append(("end", state.step))
'''


@pytest.fixture
def plugin_cfg(tmp_path):
    (tmp_path / "plugin_modules").mkdir()
    (tmp_path / "plugin_modules" / "noting_callback.py").write_text(textwrap.dedent(CALLBACK_PLUGIN))
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text().replace("plugins: []", "plugins: [noting_callback]"))

    def cfg(**overrides):
        return load(tmp_path / "params.yaml", {"method": "ddpm", "training.batch_size": 256, "training.epochs": 2,
                                               "run.log_every": 5, **overrides})
    return cfg


def _train(cfg, callbacks):
    torch.manual_seed(0)
    method = DDPM(DDPMParams(20))
    state = new_state(MLP((2,)), cfg, 16, torch.Generator().manual_seed(0), method)
    return train(method, state, data(), cfg, NullLogger(), callbacks=callbacks)


def test_a_plugin_callback_gets_every_hook_and_changes_nothing_it_does_not_ask_for(plugin_cfg):
    cfg = plugin_cfg(**{"training.callbacks": ["noting_callback"]})
    import noting_callback

    noting_callback.CALLS.clear()
    state = _train(cfg, build_callbacks(cfg))
    logged = [("log", s, ["grad_norm", "loss", "lr"]) for s in (5, 10, 15, 16)]
    assert noting_callback.CALLS == [("start", 0), *logged[:1], ("epoch", 1, 8), *logged[1:3], ("epoch", 2, 16),
                                     *logged[3:], ("end", 16)]
    plain = _train(plugin_cfg(), build_callbacks(plugin_cfg()))
    for p, q in zip(state.net.parameters(), plain.net.parameters()):
        assert torch.equal(p, q)
    assert train_params(cfg) != train_params(plugin_cfg())  # a callback may stop training: it keys it


def test_a_stop_a_callback_asks_for_ends_training_at_the_next_logged_step(plugin_cfg):
    cfg = plugin_cfg(**{"training.callbacks": ["noting_callback"]})
    import noting_callback

    noting_callback.CALLS.clear()
    noting_callback.STOP_AT[0] = 7
    try:
        state = _train(cfg, build_callbacks(cfg))
    finally:
        noting_callback.STOP_AT[0] = None
    assert state.step == 10 and state.history[-1][0] == 10
    assert noting_callback.CALLS[-1] == ("end", 10)


def test_an_unknown_callback_is_one_line_naming_the_key():
    with pytest.raises(ConfigError) as err:
        load(ROOT / "params.yaml", {"training.callbacks": ["nope"]})
    assert "training.callbacks = ['nope']" in str(err.value) and "\n" not in str(err.value)
