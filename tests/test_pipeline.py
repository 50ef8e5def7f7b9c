"""The pipeline steps without DVC: outputs, safe failures on bad files, the report."""
import json
import shutil

import numpy as np
import pytest
import torch

from genlib import io
from genlib.pipeline.evaluate import evaluate_stage
from genlib.pipeline.generate import generate_stage
from genlib.pipeline.paths import Paths
from genlib.pipeline.prepare import prepare_data
from genlib.pipeline.prepared import load_points
from genlib.pipeline.train import train_stage
from genlib.pipeline.trained import load_trained
from genlib.cli import main
from genlib.config import load
from genlib.errors import DataError
from genlib.pipeline.report import report_stage

from test_config import ROOT

TINY = {
    "data.nsamples": 1024, "data.ntest": 800, "training.epochs": 2, "training.batch_size": 256,
    "eval.nsamples": 600, "eval.batch_size": 300, "eval.reverse_steps": 10, "eval.n_exact": 300,
    "eval.n_mmd": 300, "eval.n_projections": 50, "dlpm.diffusion_steps": 10, "ddpm.diffusion_steps": 10,
    "run.progress": "never", "run.log_every": 2,
}


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    cfg = load(ROOT / "params.yaml", TINY)
    paths = Paths(root)
    prepare_data(cfg, paths)
    train_stage(cfg, paths)
    generate_stage(cfg, paths)
    evaluate_stage(cfg, paths)
    report_stage(cfg, paths)
    return cfg, paths


def test_outputs(done):
    cfg, paths = done
    train = np.load(paths.prepared / "train.npy")
    assert train.shape == (1024, 2) and train.dtype == np.float32
    meta = json.loads((paths.prepared / "meta.json").read_text())
    assert len(meta["modes"]) == 9 and abs(sum(meta["weights"]) - 1) < 1e-6
    samples = np.load(paths.samples / "samples.npy")
    assert samples.shape == (600, 2)
    metrics = json.loads(paths.metrics.read_text())
    assert metrics["n_nonfinite"] == 0 and metrics["w1_exact"] > 0
    md = (paths.report / "report.md").read_text()
    assert "w1_exact" in md and "![Training loss](loss.png)" in md
    html = (paths.report / "report.html").read_text()
    assert "data:image/png;base64," in html and "http" not in html.replace("http-equiv", "")
    assert not list(paths.root.rglob("*.tmp"))  # atomic writes leave nothing behind


def test_generation_is_reproducible_per_batch(done, tmp_path):
    cfg, paths = done
    first = np.load(paths.samples / "samples.npy")
    generate_stage(cfg, paths)
    assert np.array_equal(first, np.load(paths.samples / "samples.npy"))


def test_corrupt_checkpoint_is_a_clear_error(done, tmp_path):
    cfg, paths = done
    other = Paths(tmp_path)
    other.checkpoint.parent.mkdir(parents=True)
    other.checkpoint.write_bytes(paths.checkpoint.read_bytes()[:1000])
    with pytest.raises(DataError, match="checkpoint.pt: corrupt or unreadable checkpoint"):
        load_trained(cfg, other)


def test_checkpoint_from_other_params_is_refused(done):
    cfg, paths = done
    other = load(ROOT / "params.yaml", {**TINY, "optim.lr": 1e-4})
    with pytest.raises(DataError, match="optim differ"):
        load_trained(other, paths)


def test_nonfinite_samples_are_counted_not_fatal(done, tmp_path):
    cfg, paths = done
    samples = np.load(paths.samples / "samples.npy")
    samples[:7] = np.nan
    io.save_array(paths.samples / "samples.npy", samples)
    metrics = evaluate_stage(cfg, paths)
    assert metrics["n_nonfinite"] == 7 and np.isfinite(metrics["w1_exact"])


def test_reference_train_scores_against_the_training_points(done, tmp_path):
    cfg, paths = done
    shutil.copytree(paths.root, tmp_path / "copy")
    copy = Paths(tmp_path / "copy")
    on_test = evaluate_stage(cfg, copy)
    on_train = evaluate_stage(load(ROOT / "params.yaml", {**TINY, "eval.reference": "train"}), copy)
    assert on_test["n_reference"] == 800 and on_train["n_reference"] == 1024
    assert on_train["w1_sliced"] != on_test["w1_sliced"]


def test_nan_in_data_is_refused(tmp_path):
    arr = np.zeros((10, 2), dtype=np.float32)
    arr[3, 1] = np.nan
    io.save_array(tmp_path / "train.npy", arr)
    with pytest.raises(DataError, match="1 points hold NaN"):
        load_points(tmp_path / "train.npy")


def test_cli_check_and_list(capsys, tmp_path):
    main(["list"])
    assert "dlpm" in capsys.readouterr().out
    bad = tmp_path / "params.yaml"
    bad.write_text((ROOT / "params.yaml").read_text().replace("alpha: 1.8", "alpha: 3"))
    with pytest.raises(SystemExit) as info:
        main(["check", str(bad)])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {bad}: dlpm.alpha = 3") and "\n" not in err


def test_same_params_same_metrics(tmp_path):
    # Two independent runs of the whole pipeline give bit-identical weights and metrics on CPU.
    cfg = load(ROOT / "params.yaml", TINY)
    results = []
    for name in ("a", "b"):
        paths = Paths(tmp_path / name)
        prepare_data(cfg, paths)
        train_stage(cfg, paths)
        generate_stage(cfg, paths)
        metrics = evaluate_stage(cfg, paths)
        metrics.pop("sampling_time_s")
        results.append((metrics, torch.load(paths.checkpoint, weights_only=True)["state"]["net"]))
    (m1, w1), (m2, w2) = results
    assert m1 == m2
    assert all(torch.equal(w1[k], w2[k]) for k in w1)


def test_identical_training_gives_identical_checkpoint_bytes(tmp_path):
    """The checkpoint's bytes, and so DVC's hash of data/model, depend only on what was trained."""
    runs = []
    for name in ("a", "b"):
        cfg = load(ROOT / "params.yaml", {**TINY, "training.epochs": 2})
        paths = Paths(tmp_path / name)
        prepare_data(cfg, paths)
        train_stage(cfg, paths)
        runs.append(paths.checkpoint.read_bytes())
    assert runs[0] == runs[1]
