"""The methods with networks of their own (VAE, hVAE, GAN, Discriminator Flow, ScoreGAN) train
with two processes (torchrun, gloo, CPU) what they train with one: the same weights, EMAs and
curves, a stop and a resume included, and stage outputs that the next stage reads."""
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import torch.distributed as dist
import yaml

from genlib.config import load
from genlib.errors import ConfigError
from genlib.io import load_torch, read_json
from genlib.pipeline.generate import generate_stage
from genlib.pipeline.paths import Paths
from genlib.pipeline.prepare import prepare_data
from genlib.pipeline.train import train_stage
from genlib.pipeline.train_teacher import train_teacher_stage
from genlib.methods.discr_flow import DiscrFlow, DiscrFlowParams

from test_config import ROOT
from test_distributed import one_thread, stage
from test_hvae_blocks import EVERY
from test_images_data import write_fake_mnist
from test_images_pipeline import MNIST

pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()), reason="this torch has no torch.distributed with gloo"
)

# 48 steps of 128 points; grad_clip is active on every network
TINY = {
    "data.nsamples": 1024, "data.ntest": 100, "training.epochs": 6, "training.batch_size": 128,
    "training.ema_rates": [0.9, 0.99], "training.grad_clip": 1.0, "eval.nsamples": 200, "eval.batch_size": 100,
    "run.log_every": 4, "run.checkpoint_freq": 8, "run.progress": "never",
}
# 8 steps of 64 MNIST images of 16 x 16 (fake ones of the same shapes without the shared copy)
IMAGES = {
    "data.dataset": "mnist", "model.net": "unet", "data.max_train": 512, "data.max_test": 128, "data.image_size": 16,
    "eval.classifier_epochs": 1, "training.epochs": 1, "training.batch_size": 64, "eval.nsamples": 64,
    "eval.batch_size": 64, "gan.latent_dim": 8, "gan.g_channels": 8, "gan.d_channels": 8,
}
# case: (method, changes, steps)
CASES = {
    "vae": ("vae", {}, 48),
    # free_bits 0.5 (params.yaml): whether a layer is held at it must be decided by the whole batch
    "hvae": ("hvae", {}, 48),
    # every further block type and a Laplace top (its uniform draws the whole batch's too), under a KL warm-up
    "hvae_blocks": ("hvae", {"hvae.blocks": EVERY, "hvae.kl_warmup_steps": 30}, 48),
    # two optimizers, several critic steps per generator step, R1 (a gradient of a gradient);
    # 96 steps, so that the stop comes in the middle. (Spectral norm is left out: its power
    # iteration sees the weights alone, and its vectors magnify their float differences ~5 times.)
    "gan": ("gan", {"gan.n_critic": 2, "training.epochs": 12}, 96),
    # the DCGAN: the generator's BatchNorm normalises by the whole batch on every process
    "gan_images": ("gan", IMAGES, 8),
    # every draw of its update: the steps k, the prior, the flow's noise, the penalty's interpolates;
    # 32 steps, so that a process's 64 rows often miss the batch's largest k (the flow's length)
    "discr_flow": ("discr_flow", {"discr_flow.steps": 32, "discr_flow.loss": "ipm", "discr_flow.grad_penalty": 1.0,
                                  "discr_flow.entropy_reg": 0.1}, 48),
    # the teacher (an EDM MLP, trained once by one process) and two optimizers; the noise levels too
    "scoregan": ("scoregan", {"scoregan.n_score": 2, "scoregan.g_units": 64}, 48),
}
# The two runs differ only in the order of float32 additions (a mean of two half-batch means
# against one mean, the all-reduce of the gradients), about 1e-7 relative per step. Measured on
# weights below 1: at most 1.0e-6 (VAE, 48 steps), 3.6e-6 (hVAE, 48 steps), 1.6e-6 (GAN, 96
# steps, stopped and resumed), 4.2e-7 (DCGAN, 8 steps; 8e-5 on the one bias its BatchNorm
# cancels, left out: cancelled_by_batch_norm), 1.2e-6 (Discriminator Flow, 48 steps) and 7.6e-7
# (ScoreGAN, 48 steps). 2e-5 leaves a margin of 5 and stays 50 times below one Adam step (lr
# 1e-3). Mistakes move the weights by far more: free bits clamped on a process's own KL instead
# of the whole batch's, 4e-2 (hVAE); the DCGAN's generator run on a process's rows alone, 5e-3;
# the flow run to a process's own largest k, 4e-3; ScoreGAN's noise levels drawn for a process's
# rows alone, 7e-2.
ATOL = 2e-5


def make_project(path, case, nproc, mnist):
    method, changes, _ = CASES[case]
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for dotted, value in {**TINY, **changes, "data.root": str(mnist), "run.nproc_per_node": nproc}.items():
        section, key = dotted.split(".")
        raw[section][key] = value
    raw["method"] = method
    path.mkdir(parents=True, exist_ok=True)
    (path / "params.yaml").write_text(yaml.safe_dump(raw))
    return path


def cancelled_by_batch_norm(weights: dict) -> set[str]:
    """The biases of the layers a BatchNorm follows (the DCGAN generator's): the normalisation
    takes them out again, so their gradient is 0 up to rounding, and Adam, which divides by the
    gradient's own size, steps them along that rounding, which any other order of additions
    changes. They do not change what the network computes."""
    out = set()
    for name, tensor in weights.items():
        layer, _, leaf = name.rpartition(".")
        seq, _, index = layer.rpartition(".")
        after = weights.get(f"{seq}.{int(index) + 1}.weight") if leaf == "bias" and index.isdigit() else None
        if after is not None and after.dim() == 1 and after.shape == tensor.shape:
            out.add(name)
    return out


def two_processes(two, stop: bool):
    """The train stage with 2 processes, as a user starts it; with ``stop``, SIGTERM once the first
    resume checkpoint is there, then the stage again. The stderr of each run."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = stage(two, env)
    if not stop:
        return [proc.communicate(timeout=300)[1]], [proc.returncode]
    deadline = time.time() + 120
    while not list((two / ".genlib" / "resume").glob("train-*.pt")):
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    stopped = proc.communicate(timeout=120)[1]
    resumed = stage(two, env)
    return [stopped, resumed.communicate(timeout=300)[1]], [proc.returncode, resumed.returncode]


@pytest.fixture(scope="module", params=sorted(CASES))
def runs(request, tmp_path_factory):
    """One process straight through; two processes (the 2D GAN's stopped by SIGTERM and resumed)."""
    case = request.param
    tmp = tmp_path_factory.mktemp(f"distributed_{case}")
    mnist = MNIST
    if not MNIST.is_dir():
        mnist = tmp / "fake_mnist"
        write_fake_mnist(mnist, 600, 300)
    one = make_project(tmp / "one", case, 1, mnist)
    prepare_data(load(one / "params.yaml"), Paths(one))
    with one_thread():
        train_teacher_stage(load(one / "params.yaml"), Paths(one))  # ScoreGAN's; a marker for the others
        train_stage(load(one / "params.yaml"), Paths(one))
    two = make_project(tmp / "two", case, 2, mnist)
    for folder in ("prepared", "teacher"):
        shutil.copytree(one / "data" / folder, two / "data" / folder)
    errs, codes = two_processes(two, stop=case == "gan")
    return case, one, two, errs, codes


def test_two_processes_train_what_one_does(runs):
    case, one, two, errs, codes = runs
    if case == "gan":
        assert codes == [130, 0] and "training stopped by SIGTERM" in errs[0] and "resuming training from" in errs[1], errs
    else:
        assert codes == [0], errs
    a, b = (load_torch(p / "data/model/checkpoint.pt")["state"] for p in (one, two))
    assert a["step"] == b["step"] == CASES[case][2] and a["restores"] == b["restores"] == 0
    assert a["net"].keys() == b["net"].keys()
    free = cancelled_by_batch_norm(a["net"])
    assert bool(free) == (case == "gan_images")
    for name, tensor in a["net"].items():
        assert name in free or torch.allclose(tensor, b["net"][name], rtol=0, atol=ATOL), name
    for rate, weights in a["ema"].items():
        for name, tensor in weights.items():
            assert name in free or torch.allclose(tensor, b["ema"][rate][name], rtol=0, atol=ATOL), (rate, name)
    # every curve, the loss and the method's own terms (averaged over the processes) alike
    assert [s for s, _ in a["history"]] == [s for s, _ in b["history"]]
    for (_, row_a), (_, row_b) in zip(a["history"], b["history"]):
        assert row_a.keys() == row_b.keys() and len(row_a) > 3
        for key, value in row_a.items():
            assert abs(value - row_b[key]) <= 1e-4 * max(abs(value), 1.0), (key, value, row_b[key])
    assert not list((two / ".genlib" / "resume").glob("*.pt"))


def test_their_outputs_feed_the_next_stage(runs):
    case, _, two, _, _ = runs
    info = read_json(two / "metrics" / "train.json")
    assert info["train_steps"] == CASES[case][2] and np.isfinite(info["final_loss"])
    assert (two / "data/model/config.json").is_file() and list((two / "plots" / "train").iterdir())
    with one_thread():
        generate_stage(load(two / "params.yaml", {"run.nproc_per_node": 1}), Paths(two))
    samples = np.load(two / "data/samples/samples.npy")
    if case == "gan_images":
        assert samples.shape == (64, 1, 16, 16) and samples.dtype == np.uint8
    else:
        assert samples.shape == (200, 2) and np.isfinite(samples).all()


def test_a_method_that_does_not_split_its_batch_is_refused():
    class WholeBatch(DiscrFlow):
        splits_batch = False

    with pytest.raises(ConfigError, match=r"run.nproc_per_node = 2 .*discr_flow steps its own optimizers on the whole batch"):
        WholeBatch(DiscrFlowParams()).check_distributed(2)
