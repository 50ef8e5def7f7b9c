"""Continuing a run with the real dvc: 20 epochs, then 20 more from its checkpoint, against 40."""
import hashlib
import json
import shutil

import pytest
import torch

from dvc_project import dvc_bin, make_repo

pytestmark = pytest.mark.e2e


def trained(path):
    return torch.load(path / "data" / "model" / "checkpoint.pt", weights_only=True)["state"]


def same(a, b) -> bool:
    """Equal to the bit: tensors by ``torch.equal``, containers element by element."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def test_twenty_epochs_continued_by_twenty_more_are_forty_epochs_bit_for_bit(tmp_path):
    # Up to train alone (the later stages only read its checkpoint). A constant learning rate (the
    # README: the schedule must not depend on the run's length); 2 steps an epoch; the curves are
    # logged where the 20-epoch run ends, so they agree too.
    path, sh = make_repo(tmp_path, {"method": "ddpm", "data": {"nsamples": 512}, "optim": {"schedule": "none"},
                                    "training": {"epochs": 20, "batch_size": 256}, "run": {"log_every": 8}})
    dvc = dvc_bin()
    sh(dvc, "exp", "run", "train", "-n", "first")
    shutil.copytree(path / "data" / "model", path / "init" / "first")
    first = trained(path)
    out = sh(dvc, "exp", "run", "train", "-S", "training.init_from=init/first", "-n", "more")
    assert "training continues from init/first at step 40, to step 80" in out, out
    continued = trained(path)
    again = sh(dvc, "exp", "run", "train", "-S", "training.init_from=init/first", "-n", "more_again")
    assert "Running stage 'train'" not in again, again  # the same init's content: the same key
    # Another checkpoint under the same path (the continued run's) is another key of train.
    init_key = lambda: json.loads((path / "data" / "keys" / "train.json").read_text())["params"]["init_sha256"]
    before = init_key()
    shutil.copy(path / "data" / "model" / "checkpoint.pt", path / "init" / "first" / "checkpoint.pt")
    sh(dvc, "repro", "config")
    assert before != init_key() == hashlib.sha256((path / "init" / "first" / "checkpoint.pt").read_bytes()).hexdigest()
    sh(dvc, "exp", "run", "train", "-S", "training.init_from=null", "-S", "training.epochs=40", "-n", "whole")
    whole = trained(path)
    assert first["step"] == 40 and continued["step"] == whole["step"] == 80 and continued["origin"] == 40
    for part in ("net", "ema", "optimizer", "generator", "torch_rng"):
        assert same(continued[part], whole[part]), part
    lr = lambda state: {k: v for k, v in state["scheduler"]["net"].items() if k != "_step_count"}  # torch's count of its own calls
    assert same(lr(continued), lr(whole))
    assert not same(first["net"], whole["net"])
    # Each run's curves are its own steps': the continued run's rows are the uninterrupted run's after step 40.
    assert same(continued["history"], [row for row in whole["history"] if row[0] > 40])
