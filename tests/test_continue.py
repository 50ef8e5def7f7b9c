"""Continuing a run (training.init_from): what is refused at the door and before training, and
the settings a continued run takes from its own params (the end-to-end run is test_e2e_continue.py)."""
import math
import shutil

import pytest

from genlib import io
from genlib.config import load
from genlib.errors import ConfigError
from genlib.pipeline.paths import Paths
from genlib.pipeline.prepare import prepare_data
from genlib.pipeline.train import train_stage
from genlib.weights import with_digests

from test_config import ROOT

# 512 points in batches of 256: 2 steps an epoch, 8 steps.
TINY = {"method": "ddpm", "ddpm.diffusion_steps": 10, "eval.reverse_steps": 10, "data.nsamples": 512, "data.ntest": 200,
        "training.epochs": 4, "training.batch_size": 256, "run.log_every": 2, "run.progress": "never",
        "run.device": "cpu", "run.threads": 1}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A project whose 8-step run is copied to init/a; a test works from its root."""
    root = tmp_path_factory.mktemp("continue")
    cfg, paths = load(ROOT / "params.yaml", TINY), Paths(root)
    prepare_data(cfg, paths)
    train_stage(cfg, paths)
    shutil.copytree(paths.model, root / "init" / "a")
    return paths


@pytest.fixture
def at_root(project, monkeypatch):
    monkeypatch.chdir(project.root)  # init_from is relative to the project root
    return project


def config(**over):
    return load(ROOT / "params.yaml", {**TINY, **{k.replace("__", "."): v for k, v in over.items()}})


@pytest.mark.parametrize("where", ["data/model", "/tmp/a", "init/../data/model", "init"])
def test_a_checkpoint_outside_init_is_refused_at_the_door(at_root, where):
    with pytest.raises(ConfigError, match=r"training\.init_from = .* in init/, relative to the project root$"):
        config(training__init_from=where)


def test_a_checkpoint_that_is_not_there_is_refused_at_the_door(at_root):
    with pytest.raises(ConfigError, match=r"init/b/checkpoint.pt is not there|init/b is not there"):
        config(training__init_from="init/b")


@pytest.mark.parametrize("over, says", [
    ({"method": "dlpm", "dlpm.diffusion_steps": 10}, "a checkpoint of method dlpm (it is one of ddpm)"),
    ({"model.nunits": 32}, "a checkpoint of the network this run builds ("),
    ({"training.ema_rates": [0.9]}, "a checkpoint with an EMA of each of training.ema_rates (that of rate 0.9: not there)"),
])
def test_a_checkpoint_of_another_method_or_network_is_one_line_before_training(at_root, over, says):
    cfg = load(ROOT / "params.yaml", {**TINY, **over, "training.init_from": "init/a", "eval.ema": None})
    with pytest.raises(ConfigError) as err:
        train_stage(cfg, at_root)
    assert says in str(err.value) and "\n" not in str(err.value)
    assert str(err.value).startswith("params: training.init_from = 'init/a' is not allowed")


def test_a_checkpoint_of_other_data_or_of_kept_weights_alone_is_refused(at_root):
    body = io.load_torch(at_root.root / "init" / "a" / "checkpoint.pt", "checkpoint")
    io.save_torch(at_root.root / "init" / "wide.pt", with_digests({**body, "data_shape": [3]}))
    io.save_torch(at_root.root / "init" / "kept.pt", with_digests({"weights": {"net": body["state"]["net"]}, "config": body["config"]}))
    with pytest.raises(ConfigError, match=r"a checkpoint of data shape \[2\] \(it is one of \[3\]\)"):
        train_stage(config(training__init_from="init/wide.pt"), at_root)
    with pytest.raises(ConfigError, match="holds the whole training state"):
        train_stage(config(training__init_from="init/kept.pt"), at_root)


def test_a_continued_run_takes_its_lr_and_the_schedule_over_the_whole_length_from_its_params(at_root, tmp_path):
    """8 steps, then 8 more at another optim.lr under a cosine over the 16: the logged lr is that
    cosine at each step of the second run, which starts at step 9 and holds only its own rows."""
    paths = Paths(tmp_path)
    shutil.copytree(at_root.prepared, paths.prepared)
    cfg = config(training__init_from="init/a", optim__lr=0.001, optim__schedule="cosine")
    train_stage(cfg, paths)
    state = io.load_torch(paths.checkpoint, "checkpoint")["state"]
    assert state["step"] == 16 and state["origin"] == 8
    rows = {step: row["lr"] for step, row in state["history"]}
    assert sorted(rows) == [10, 12, 14, 16]
    for step, lr in rows.items():
        assert lr == pytest.approx(0.001 * 0.5 * (1 + math.cos(math.pi * step / 16)), rel=1e-12)


def test_a_kept_step_beyond_this_runs_own_steps_is_not_refused_at_the_door(at_root):
    """A continued run's steps go on from its checkpoint's, which the door does not read."""
    assert config(training__init_from="init/a", training__keep_every=4, eval__checkpoint=12).eval.checkpoint == 12
    with pytest.raises(ConfigError, match="eval.checkpoint = 12"):
        config(training__keep_every=4, eval__checkpoint=12)


def test_a_teacher_at_the_students_0_epochs_is_refused_naming_its_own_key(at_root):
    # scoregan at training.epochs 0 from init/: its teacher is trained afresh and needs epochs of its own
    over = {"training__init_from": "init/a", "training__epochs": 0, "method": "scoregan"}
    with pytest.raises(ConfigError, match=r"scoregan\.teacher\.training\.epochs = 0 is not allowed; expected a positive integer of its own \(training\.epochs 0"):
        config(**over)
    assert config(**over, **{"scoregan__teacher": {"method": "edm", "training": {"epochs": 3}}}).training.epochs == 0
