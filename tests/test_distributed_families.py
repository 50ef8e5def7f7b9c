"""The methods with networks of their own (VAE, hVAE, GAN) train with two processes (torchrun,
gloo, CPU) what they train with one: the same weights, EMAs and curves, a stop and a resume
included, and stage outputs that the next stage reads."""
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

from test_config import ROOT
from test_distributed import one_thread, stage

pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()), reason="this torch has no torch.distributed with gloo"
)

TINY = {
    "data": {"nsamples": 1024, "ntest": 100},
    # 48 steps of 128 rows; grad_clip is active on every network
    "training": {"epochs": 6, "batch_size": 128, "ema_rates": [0.9, 0.99], "grad_clip": 1.0},
    "eval": {"nsamples": 200, "batch_size": 100},
    "run": {"log_every": 4, "checkpoint_freq": 8, "progress": "never"},
}
FAMILIES = {
    "vae": {},
    # free_bits 0.5 (params.yaml): whether a layer is held at it must be decided by the whole batch
    "hvae": {},
    # two optimizers, several critic steps per generator step, R1 (a gradient of a gradient) and
    # spectral norm's power iteration; 96 steps, so that the stop comes in the middle
    "gan": {"gan": {"n_critic": 2}, "training": {"epochs": 12}},
}
# The two runs differ only in the order of float32 additions (a mean of two half-batch means
# against one mean, the all-reduce of the gradients), about 1e-7 relative per step. Measured on
# weights of size ~1: at most 2.4e-7 (VAE), 3.6e-7 (hVAE) and 1.2e-6 (GAN, stopped and resumed).
# 2e-5 leaves a margin above 15 and stays 50 times below one Adam step (lr 1e-3): a process
# drawing its own noise, a loss summed instead of averaged over the processes or a free-bits
# clamp on a process's own KL would move the weights by ~1e-3 per step.
ATOL = 2e-5


def make_project(path, method, nproc):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for changes in (TINY, FAMILIES[method]):
        for section, values in changes.items():
            raw[section].update(values)
    raw["method"] = method
    raw["run"]["nproc_per_node"] = nproc
    path.mkdir(parents=True, exist_ok=True)
    (path / "params.yaml").write_text(yaml.safe_dump(raw))
    return path


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


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def runs(request, tmp_path_factory):
    """One process straight through; two processes (the GAN's stopped by SIGTERM and resumed)."""
    method = request.param
    tmp = tmp_path_factory.mktemp(f"distributed_{method}")
    one = make_project(tmp / "one", method, 1)
    prepare_data(load(one / "params.yaml"), Paths(one))
    with one_thread():
        train_stage(load(one / "params.yaml"), Paths(one))
    two = make_project(tmp / "two", method, 2)
    shutil.copytree(one / "data" / "prepared", two / "data" / "prepared")
    errs, codes = two_processes(two, stop=method == "gan")
    return method, one, two, errs, codes


def test_two_processes_train_what_one_does(runs):
    method, one, two, errs, codes = runs
    if method == "gan":
        assert codes == [130, 0] and "training stopped by SIGTERM" in errs[0] and "resuming training from" in errs[1], errs
    else:
        assert codes == [0], errs
    a, b = (load_torch(p / "data/model/checkpoint.pt")["state"] for p in (one, two))
    assert a["step"] == b["step"] == (96 if method == "gan" else 48) and a["restores"] == b["restores"] == 0
    assert a["net"].keys() == b["net"].keys()
    for name, tensor in a["net"].items():
        assert torch.allclose(tensor, b["net"][name], rtol=0, atol=ATOL), name
    for rate, weights in a["ema"].items():
        for name, tensor in weights.items():
            assert torch.allclose(tensor, b["ema"][rate][name], rtol=0, atol=ATOL), (rate, name)
    # every curve, the loss and the method's own terms (averaged over the processes) alike
    assert [s for s, _ in a["history"]] == [s for s, _ in b["history"]]
    for (_, row_a), (_, row_b) in zip(a["history"], b["history"]):
        assert row_a.keys() == row_b.keys() and len(row_a) > 3
        for key, value in row_a.items():
            assert abs(value - row_b[key]) <= 1e-4 * max(abs(value), 1.0), (key, value, row_b[key])
    assert not list((two / ".genlib" / "resume").glob("*.pt"))


def test_their_outputs_feed_the_next_stage(runs):
    method, _, two, _, _ = runs
    info = read_json(two / "metrics" / "train.json")
    assert info["train_steps"] == (96 if method == "gan" else 48) and np.isfinite(info["final_loss"])
    assert (two / "data/model/config.json").is_file() and list((two / "plots" / "train").iterdir())
    with one_thread():
        generate_stage(load(two / "params.yaml", {"run.nproc_per_node": 1}), Paths(two))
    samples = np.load(two / "data/samples/samples.npy")
    assert samples.shape == (200, 2) and np.isfinite(samples).all()


@pytest.mark.parametrize("method", ["scoregan", "discr_flow"])
def test_the_others_still_refuse(method):
    with pytest.raises(ConfigError, match=rf"run.nproc_per_node = 2 .*{method} steps its own optimizers on the whole batch"):
        load(ROOT / "params.yaml", {"method": method, "run.nproc_per_node": 2, "training.batch_size": 128})
