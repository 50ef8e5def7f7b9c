"""genlib from Python: load a trained model and sample what the generate stage wrote; the
README's example, run as written."""
import re

import numpy as np
import pytest
import torch

import genlib
from genlib.config import load
from genlib.errors import DataError
from genlib.pipeline.generate import generate_stage
from genlib.pipeline.paths import Paths
from genlib.pipeline.prepare import prepare_data
from genlib.pipeline.train import train_stage

from test_config import ROOT
from test_pipeline import TINY


@pytest.fixture(scope="module", params=["dlpm", "vae"])
def run(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param)
    cfg = load(ROOT / "params.yaml", {**TINY, "method": request.param, "eval.sampler": "default"})
    paths = Paths(str(root))  # a string works as well as a Path
    prepare_data(cfg, paths)
    train_stage(cfg, paths)
    generate_stage(cfg, paths)
    return cfg, paths


def test_sample_equals_the_generate_stage(run):
    cfg, paths = run
    model = genlib.load(paths.model)
    assert model.config["method"] == cfg.method and model.data_shape == (2,)
    x = model.sample(cfg.eval.nsamples, steps=cfg.eval.reverse_steps, batch_size=cfg.eval.batch_size)
    assert np.array_equal(x.numpy(), np.load(paths.samples / "samples.npy"))
    for where in (paths.root, paths.checkpoint):  # an experiment's folder, or the file itself
        assert genlib.load(where).config == model.config


def test_seeds_and_weights_are_chosen(run):
    cfg, paths = run
    model = genlib.load(paths.model)
    a, b = model.sample(50, steps=5, seed=1), model.sample(50, steps=5, seed=2)
    assert not torch.equal(a, b) and torch.equal(a, model.sample(50, steps=5, seed=1))
    raw = genlib.load(paths.model, ema=None)
    assert not torch.equal(raw.sample(50, steps=5, seed=1), a)
    with pytest.raises(DataError, match="no EMA of rate 0.5"):
        genlib.load(paths.model, ema=0.5)


def test_bad_places_are_one_line(tmp_path):
    with pytest.raises(DataError, match="no checkpoint here"):
        genlib.load(tmp_path)
    with pytest.raises(AttributeError):
        genlib.no_such_thing  # noqa: B018


def test_load_config_is_the_stages_check():
    cfg = genlib.load_config(ROOT / "params.yaml", {"method": "ddpm"})
    assert cfg.method == "ddpm" and cfg == load(ROOT / "params.yaml", {"method": "ddpm"})


def test_readme_example_runs(run, monkeypatch):
    """The README's "From Python" block, run as written in a project that has trained."""
    cfg, paths = run
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## From Python\n.*?```python\n(.*?)```", text, re.S).group(1)
    monkeypatch.chdir(paths.root)
    (paths.root / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    exec(compile(block, "README.md", "exec"), {})


def test_version(capsys):
    from genlib.cli import main

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"genlib {genlib.__version__}"
