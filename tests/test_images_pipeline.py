"""An image run through the pipeline steps on a tiny MNIST configuration, and the image-specific
checks at the door."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from genlib.pipeline.evaluate import evaluate_stage
from genlib.pipeline.generate import generate_stage
from genlib.pipeline.paths import Paths
from genlib.pipeline.prepare import prepare_data
from genlib.pipeline.prepared import load_uint8
from genlib.pipeline.train import train_stage
from genlib.config import load
from genlib.errors import ConfigError
from genlib.pipeline.report import report_stage

from test_config import ROOT

MNIST = ROOT.parent / "shared" / "datasets" / "mnist" / "raw"

TINY_IMAGES = {
    "data.dataset": "mnist", "data.root": str(MNIST), "data.max_train": 512, "data.max_test": 256,
    "data.image_size": 16, "eval.classifier_epochs": 1, "model.net": "unet", "model.channels": 16,
    "model.channel_mult": [1, 2], "model.num_res_blocks": 1, "model.groups": 8, "training.epochs": 1,
    "training.batch_size": 64, "eval.nsamples": 96, "eval.batch_size": 64, "eval.reverse_steps": 5,
    "ddpm.diffusion_steps": 10, "dlpm.diffusion_steps": 10, "eval.kid_subset_size": 50,
    "run.progress": "never", "run.log_every": 2,
}


@pytest.mark.skipif(not MNIST.is_dir(), reason=f"real MNIST not found at {MNIST}")
@pytest.mark.parametrize("method", ["ddpm", "dlpm", "edm", "tedm", "lim"])  # every method runs on the U-Net
def test_tiny_mnist_run(tmp_path, method):
    cfg = load(ROOT / "params.yaml", {**TINY_IMAGES, "method": method})
    paths = Paths(tmp_path)
    meta = prepare_data(cfg, paths)
    assert meta["kind"] == "images" and meta["shape"] == [1, 16, 16] and meta["ntrain"] == 512
    assert np.load(paths.prepared / "train.npy").dtype == np.uint8
    assert sum(meta["class_counts"]) == 512 and (paths.prepared / "classifier.pt").is_file()
    train_stage(cfg, paths)
    info = generate_stage(cfg, paths)
    samples = np.load(paths.samples / "samples.npy")
    assert samples.shape == (96, 1, 16, 16) and samples.dtype == np.uint8 and info["n_nonfinite"] == 0
    metrics = evaluate_stage(cfg, paths)
    for key in ("fid_clf", "kid_clf", "precision_clf", "recall_clf", "class_tv", "class_tv_faithful", "low_confidence_share"):
        assert np.isfinite(metrics[key]), key
    assert "fid" not in metrics  # classifier features never pass for Inception FID
    assert "rare_share_gen" not in metrics and metrics["n_reference"] == 256  # balanced; the test set
    # 96 samples, 9.6 expected a class: every coverage is refused (NaN, which equals nothing)
    assert np.isnan(metrics["class_worst_coverage"]) and metrics["class_min_expected"] < 10
    assert json.dumps(json.loads(paths.metrics.read_text()), sort_keys=True) == json.dumps(metrics, sort_keys=True)
    report_stage(cfg, paths)
    md = (paths.report / "report.md").read_text()
    assert "fid_clf" in md and "classifier_test_accuracy" in md


@pytest.mark.skipif(not MNIST.is_dir(), reason=f"real MNIST not found at {MNIST}")
def test_long_tailed_mnist_against_its_training_set(tmp_path):
    """MNIST-LT (imbalance 10) scored against the training set: the rare classes are there, the
    96 samples are too few for the rarest class (refused, and said in the report)."""
    cfg = load(ROOT / "params.yaml", {**TINY_IMAGES, "method": "ddpm", "data.imbalance": 10.0, "eval.reference": "train"})
    paths = Paths(tmp_path)
    meta = prepare_data(cfg, paths)
    assert meta["imbalance"] == 10.0
    train_stage(cfg, paths)
    generate_stage(cfg, paths)
    metrics = evaluate_stage(cfg, paths)
    assert metrics["n_reference"] == meta["ntrain"] == 512
    shares = np.array(meta["class_counts"]) / 512
    assert metrics["rare_share_train"] == pytest.approx(np.sort(shares)[:4].sum())
    assert metrics["class_min_expected"] == pytest.approx(96 * shares.min()) and metrics["class_min_expected"] < 10
    assert np.isnan(metrics["class_worst_coverage"])
    # Over run.whole_set_mb (0: any set) the training images are mapped from the file, not read
    # whole; the metrics are the same to the bit.
    train = paths.prepared / "train.npy"
    assert isinstance(load_uint8(train, whole_mb=0), np.memmap) and type(load_uint8(train, whole_mb=1024)) is np.ndarray
    mapped = evaluate_stage(load(ROOT / "params.yaml", {**TINY_IMAGES, "method": "ddpm", "data.imbalance": 10.0,
                                                        "eval.reference": "train", "run.whole_set_mb": 0}), paths)
    assert json.dumps(mapped, sort_keys=True) == json.dumps(metrics, sort_keys=True)  # NaN as NaN
    report_stage(cfg, paths)
    md = (paths.report / "report.md").read_text()
    assert "compared with the train set" in md and "## Warnings" in md and "eval.nsamples >=" in md


def test_image_params_are_checked_at_the_door(tmp_path):
    base = {**TINY_IMAGES, "data.root": str(tmp_path)}
    with pytest.raises(ConfigError, match="model.net.*unet"):
        load(ROOT / "params.yaml", {**base, "model.net": "mlp"})
    with pytest.raises(ConfigError, match="model.net.*mlp"):
        load(ROOT / "params.yaml", {"model.net": "unet"})
    with pytest.raises(ConfigError, match="eval.inception_weights"):
        load(ROOT / "params.yaml", {**base, "eval.feature_extractor": "inception",
                                    "eval.inception_weights": str(tmp_path / "missing.pth")})
    with pytest.raises(ConfigError, match="eval.feature_extractor"):
        load(ROOT / "params.yaml", {**base, "eval.classifier_epochs": 0})
    # switching dataset keeps the 2D keys in the section: they are ignored, not errors
    cfg = load(ROOT / "params.yaml", base)
    assert not hasattr(cfg.data, "n_mixture") and cfg.data.max_train == 512
    with pytest.raises(ConfigError, match="data.max_trian"):
        load(ROOT / "params.yaml", {**base, "data.max_trian": 5})


def test_shipped_mnist_config_is_valid():
    cfg = load(ROOT / "configs" / "mnist.yaml")
    assert cfg.data.dataset == "mnist" and cfg.model_net == "unet"


@pytest.mark.parametrize("params_file", ["params.yaml", "configs/mnist.yaml"])
def test_params_files_hold_every_key_dvc_yaml_names(params_file):
    # dvc refuses to run a stage whose listed params are missing from the file
    import yaml

    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    params = yaml.safe_load((ROOT / params_file).read_text())
    for stage in stages.values():
        for key in stage.get("params", []):
            if isinstance(key, dict):  # a whole params file: it must be the one checked here
                assert set(key) == {"params.yaml"}
                continue
            node = params
            for part in key.split("."):
                assert isinstance(node, dict) and part in node, f"{params_file} lacks {key}"
                node = node[part]


def test_classifier_features_on_an_unlabelled_set_is_a_clear_error(tmp_path):
    # prepare_data trains the classifier only on labelled sets; evaluate must say so in one line
    from genlib import io
    from genlib.pipeline.evaluate import score_images

    cfg = load(ROOT / "params.yaml", {**TINY_IMAGES, "data.dataset": "image_folder", "data.root": str(tmp_path)})
    paths = Paths(tmp_path)
    images = np.zeros((8, 1, 16, 16), dtype=np.uint8)
    io.save_array(paths.prepared / "test.npy", images)
    io.save_array(paths.samples / "samples.npy", images)
    meta = {"dataset": "image_folder", "kind": "images", "shape": [1, 16, 16], "num_classes": None}
    with pytest.raises(ConfigError, match="eval.feature_extractor.*no labels"):
        score_images(cfg, paths, meta, torch.from_numpy(images), torch.from_numpy(images))
