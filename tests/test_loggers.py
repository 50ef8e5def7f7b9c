"""Logger sinks: the loop writes through one interface to every sink run.loggers names."""
import textwrap

import pytest
import torch

from genlib.config import load
from genlib.errors import ConfigError
from genlib.methods.ddpm import DDPM, DDPMParams
from genlib.nets.mlp import MLP
from genlib.pipeline.keys import STAGES, stage_params, train_params
from genlib.training.logger import Loggers
from genlib.training.trainer import new_state, train

from test_config import ROOT
from test_trainer import data, tiny_cfg


def _train_logged(cfg, logger):
    torch.manual_seed(0)
    method = DDPM(DDPMParams(20))
    state = new_state(MLP((2,)), cfg, 16, torch.Generator().manual_seed(0), method)
    train(method, state, data(), cfg, logger)
    logger.close()
    return state


def _dvclive_rows(folder):
    rows = {}
    for tsv in (folder / "plots" / "metrics").glob("*.tsv"):
        lines = tsv.read_text().splitlines()[1:]
        rows[tsv.stem] = [(int(step), float(value)) for step, value in (line.split("\t") for line in lines)]
    return rows


def _tensorboard_rows(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder / "tensorboard"))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_dvclive_and_tensorboard_receive_the_same_scalars(tmp_path):
    cfg = tiny_cfg(epochs=2)
    out = tmp_path / "train"
    _train_logged(cfg, Loggers(["dvclive", "tensorboard"], out, cfg))
    curves, events = _dvclive_rows(out), _tensorboard_rows(out)
    assert set(curves) == set(events) == {"loss", "grad_norm", "lr"}
    for name, rows in curves.items():
        assert [s for s, _ in rows] == [5, 10, 15, 16]  # log_every 5, and the last step
        assert [s for s, _ in events[name]] == [s for s, _ in rows]
        # TensorBoard keeps float32 scalars
        assert [v for _, v in events[name]] == pytest.approx([v for _, v in rows], rel=1e-6), name
    assert not (tmp_path / ".train.partial").exists()


def test_an_unknown_sink_is_one_line_naming_the_key_and_the_known_sinks():
    with pytest.raises(ConfigError) as err:
        load(ROOT / "params.yaml", {"run.loggers": ["dvclive", "wandb"]})
    message = str(err.value)
    assert "\n" not in message and "run.loggers = ['dvclive', 'wandb']" in message
    assert message.endswith("known: dvclive, tensorboard")
    with pytest.raises(ConfigError, match="dvclive among them"):
        load(ROOT / "params.yaml", {"run.loggers": ["tensorboard"]})
    with pytest.raises(ConfigError, match="each once"):
        load(ROOT / "params.yaml", {"run.loggers": ["dvclive", "dvclive"]})


SINK_PLUGIN = '''
"""A sink of the user's own: keeps every row it is given."""
from genlib.registry import LOGGERS
from genlib.training.logger import Logger

ROWS = []


@LOGGERS.register("recording_sink")
class RecordingSink(Logger):
    def __init__(self, folder, cfg):
        self.folder = folder

    def log(self, step, values):
        ROWS.append((step, dict(values)))

    def close(self):
        (self.folder.path / "recording_sink.txt").write_text(str(len(ROWS)))
'''


def test_a_plugin_sink_registered_by_name_receives_the_scalars(tmp_path):
    (tmp_path / "plugin_modules").mkdir()
    (tmp_path / "plugin_modules" / "recording_sink.py").write_text(textwrap.dedent(SINK_PLUGIN))
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text().replace("plugins: []", "plugins: [recording_sink]"))
    cfg = load(tmp_path / "params.yaml", {"method": "ddpm", "run.loggers": ["dvclive", "recording_sink"],
                                          "training.batch_size": 256, "training.epochs": 2, "run.log_every": 5})
    out = tmp_path / "train"
    _train_logged(cfg, Loggers(cfg.run.loggers, out, cfg))
    from recording_sink import ROWS

    curves = _dvclive_rows(out)
    assert [step for step, _ in ROWS] == [5, 10, 15, 16]
    assert {name: [(s, v[name]) for s, v in ROWS] for name in curves} == curves
    assert (out / "recording_sink.txt").read_text() == "4"  # its files are moved into place with the curves


def test_the_sinks_key_the_train_stage_alone():
    base = load(ROOT / "params.yaml", {"method": "ddpm"})
    more = load(ROOT / "params.yaml", {"method": "ddpm", "run.loggers": ["dvclive", "tensorboard"]})
    changed = [stage for stage in STAGES if stage_params(base, stage) != stage_params(more, stage)]
    assert changed == ["train"]
    assert train_params(base) == train_params(more)  # the checkpoint's stamp: the weights are the same
    assert stage_params(more, "train")["run"]["loggers"] == ["dvclive", "tensorboard"]
