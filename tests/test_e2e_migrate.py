"""A migrated hVAE through the pipeline with the real dvc: an hVAE's weights exported under other
names, migrated into init/ by `genlib migrate`, then `dvc exp run` from them: with 0 epochs the
samples are the migrated weights' (what the API draws from them), and with 1 epoch it fine-tunes
them with a fresh optimizer from step 0."""
import numpy as np
import pytest
import torch

import genlib
from genlib import io
from genlib.cli import main
from genlib.config import load
from genlib.methods.hvae import HVAE
from genlib.migrate import export_weights

from dvc_project import dvc_bin, make_repo
from test_hvae import SMALL

pytestmark = pytest.mark.e2e


def test_a_migrated_hvae_samples_as_is_at_0_epochs_and_fine_tunes_from_step_0(tmp_path, capsys):
    path, sh = make_repo(tmp_path, {"method": "hvae", "hvae": {"blocks": SMALL}, "training": {"ema_rates": [0.99]}})
    cfg = load(path / "params.yaml")
    method = HVAE(cfg.method_params)
    torch.manual_seed(11)
    nets = method.networks((2,))
    io.save_torch(path / "theirs.pt", export_weights(method, nets))
    main(["migrate", str(path / "theirs.pt"), "--adapter", "indexed", "--data-shape", "2",
          "--params", str(path / "params.yaml"), "--out", str(path / "init" / "theirs")])
    capsys.readouterr()
    dvc = dvc_bin()
    out = sh(dvc, "exp", "run", "-S", "training.init_from=init/theirs", "-S", "training.epochs=0", "-n", "as_is")
    assert "training fine-tunes the migrated weights of init/theirs with a fresh optimizer, 0 steps from step 0" in out, out
    samples = np.load(path / "data" / "samples" / "samples.npy")
    api = genlib.load(path / "init" / "theirs").sample(cfg.eval.nsamples, batch_size=cfg.eval.batch_size)
    assert torch.equal(torch.from_numpy(samples).float(), api)
    assert (path / "metrics" / "eval.json").is_file()
    state = torch.load(path / "data" / "model" / "checkpoint.pt", weights_only=True)["state"]
    assert state["step"] == 0 and all(torch.equal(state["ema"]["0.99"][k], t) for k, t in nets.state_dict().items())

    sh(dvc, "exp", "run", "train", "-S", "training.init_from=init/theirs", "-S", "training.epochs=1", "-n", "tuned")
    state = torch.load(path / "data" / "model" / "checkpoint.pt", weights_only=True)["state"]
    steps = cfg.data.nsamples // cfg.training.batch_size  # one epoch
    assert state["step"] == steps and state["origin"] == 0 and [row[0] for row in state["history"]][-1] == steps
    moments = [m for opt in state["optimizer"].values() for m in opt["state"].values()]
    assert moments and all(float(m["step"]) == steps for m in moments)  # a fresh Adam, stepped this run only
    assert not all(torch.equal(state["net"][k], t) for k, t in nets.state_dict().items())  # trained from them
