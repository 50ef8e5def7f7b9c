"""fid_clf and kid_clf during training: the evaluation classifier's FID and KID against the validation images."""
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from genlib.config import load
from genlib.errors import ConfigError
from genlib.pipeline.keys import stage_params
from genlib.pipeline.paths import Paths
from genlib.pipeline.prepare import prepare_data
from genlib.pipeline.prepared import load_points
from genlib.pipeline.train import train_stage
from genlib.training.evaluation import ValidationEvaluation

from test_config import ROOT
from test_images_pipeline import MNIST, TINY_IMAGES

pytestmark = pytest.mark.skipif(not MNIST.is_dir(), reason=f"real MNIST not found at {MNIST}")

# 512 training images less 128 held out: 6 steps of 64, evaluated at 2, 4 and 6 on 64 samples.
ON = {**TINY_IMAGES, "method": "ddpm", "data.nval": 128, "run.device": "cpu", "run.threads": 1, "training.eval_every": 2,
      "training.eval_nsamples": 64, "training.eval_reverse_steps": 5, "training.eval_metrics": ["fid_clf", "kid_clf"]}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    paths = Paths(tmp_path_factory.mktemp("mnist_val"))
    prepare_data(load(ROOT / "params.yaml", ON), paths)
    return paths


class Replay:
    """A method whose samples are the images it is given, in the network's [-1, 1]."""

    def __init__(self, images):
        self.x = images.double() / 255.0 * 2.0 - 1.0  # to_uint8 turns these back into the same bytes

    def sample(self, net, shape, steps, generator, options):
        return self.x[: shape[0]].float()


def scores(paths, images):
    cfg = load(ROOT / "params.yaml", {**ON, "training.eval_nsamples": images.shape[0], "eval.ema": None})
    stored = load_points(paths.prepared / "val.npy")
    evaluate = ValidationEvaluation(Replay(images), stored.float(), cfg, torch.device("cpu"), images=stored, classifier=paths.classifier)
    return evaluate(SimpleNamespace(net=nn.Identity()))


def test_the_validation_images_score_as_themselves_and_noise_far_off(prepared):
    val = load_points(prepared.prepared / "val.npy")
    same = scores(prepared, val)
    noise = scores(prepared, torch.randint(0, 256, val.shape, generator=torch.Generator().manual_seed(0), dtype=torch.uint8))
    assert set(same) == {"val_fid_clf", "val_kid_clf"}
    assert abs(same["val_fid_clf"]) < 1e-3 * noise["val_fid_clf"]
    assert abs(same["val_kid_clf"]) < 0.05 * noise["val_kid_clf"]  # unbiased over random subsets: near 0, either side


def test_the_train_stage_logs_the_curves_and_keys_the_classifier_epochs(prepared):
    cfg = load(ROOT / "params.yaml", ON)
    train_stage(cfg, prepared)
    for name in ("val_fid_clf", "val_kid_clf"):
        rows = (prepared.train_log / "plots" / "metrics" / f"{name}.tsv").read_text().splitlines()[1:]
        assert [int(r.split("\t")[0]) for r in rows] == [2, 4, 6]
    assert stage_params(cfg, "train")["eval"]["classifier_epochs"] == 1  # the classifier behind the curves
    assert "classifier_epochs" not in stage_params(load(ROOT / "params.yaml", {**ON, "training.eval_metrics": ["fid_clf"],
                                                                                "training.eval_every": 0}), "train").get("eval", {})


@pytest.mark.parametrize("over, key", [
    ({"eval.classifier_epochs": 0}, "training.eval_metrics"),     # no classifier to score with
    ({"training.eval_nsamples": 3}, "training.eval_nsamples"),    # fewer than precision's k + 1
    ({"data.nval": 3}, "data.nval"),
])
def test_the_image_metrics_need_a_classifier_and_four_images_at_the_door(over, key):
    with pytest.raises(ConfigError) as err:
        load(ROOT / "params.yaml", {**ON, **over})
    assert f"{key} = " in str(err.value) and "\n" not in str(err.value)


def test_the_image_metrics_are_not_for_points():
    with pytest.raises(ConfigError, match=r"training\.eval_metrics = \['fid_clf'\]"):
        load(ROOT / "params.yaml", {"method": "ddpm", "data.nval": 256, "training.eval_every": 20, "training.eval_metrics": ["fid_clf"]})
