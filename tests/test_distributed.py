"""Two processes (torchrun, gloo, CPU) train what one process trains, stop and resume together,
restore together after a NaN on one of them, and only rank 0 writes."""
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import yaml

from genlib.pipeline.generate import generate_stage
from genlib.pipeline.paths import Paths
from genlib.pipeline.prepare import prepare_data
from genlib.pipeline.train import train_stage
from genlib.config import load
from genlib.errors import ConfigError
from genlib.io import load_torch
from genlib.methods.ddpm import DDPM, DDPMParams
from genlib.nets.mlp import MLP
from genlib.training import distributed
from genlib.training.logger import NullLogger
from genlib.training.trainer import new_state, train

from test_config import ROOT
from test_trainer import data, tiny_cfg

pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()), reason="this torch has no torch.distributed with gloo"
)

TINY = {
    "data": {"nsamples": 1024, "ntest": 100},
    # 20 epochs of 8 steps: long enough to be stopped in the middle; grad_clip is active
    "training": {"epochs": 20, "batch_size": 128, "ema_rates": [0.9, 0.99], "grad_clip": 0.1},
    "dlpm": {"diffusion_steps": 20},
    "eval": {"reverse_steps": 20},
    "run": {"log_every": 5, "checkpoint_freq": 10, "progress": "never"},
}
# The two runs differ only in the order of float32 additions (a mean of two half-batch means
# against one mean; DDP's gradient average), about 1e-7 relative per step. Measured after the
# 160 steps (stopped and resumed): 1.5e-6 at most on weights of size ~1. 2e-5 leaves a margin of 13 and stays 250
# times below one Adam step (lr 5e-3): a process drawing its own noise, a shard taken twice or
# an lr scaled by the number of processes would move weights by ~1e-3 per step.
ATOL = 2e-5

# Imported by every Python process started with this folder first on PYTHONPATH: in a training
# process of rank > 0 it records every write, rename, removal or mkdir under the project.
AUDIT = '''
import atexit, json, os, sys
if os.environ.get("RANK"):
    root, seen = os.environ["GENLIB_AUDIT_ROOT"], []
    WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    def hook(event, args):
        if event == "open":
            mode, flags = args[1], args[2]
            if not ((isinstance(mode, str) and set(mode) & set("wax+")) or (isinstance(flags, int) and flags & WRITE)):
                return
        elif event not in ("os.rename", "os.remove", "os.mkdir", "os.rmdir", "shutil.rmtree", "os.chmod"):
            return
        for arg in args[:2] if event == "os.rename" else args[:1]:
            if isinstance(arg, (str, bytes, os.PathLike)) and os.path.abspath(os.fsdecode(arg)).startswith(root):
                seen.append([event, os.path.abspath(os.fsdecode(arg))])
    sys.addaudithook(hook)
    out = os.path.join(os.environ["GENLIB_AUDIT_DIR"], f"rank{os.environ['RANK']}-{os.getpid()}.json")
    atexit.register(lambda: open(out, "w").write(json.dumps(seen)))
'''


def make_project(path: Path, nproc: int) -> Path:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for section, values in TINY.items():
        raw[section].update(values)
    raw["run"]["nproc_per_node"] = nproc
    path.mkdir(parents=True, exist_ok=True)
    (path / "params.yaml").write_text(yaml.safe_dump(raw))
    return path


@contextlib.contextmanager
def one_thread():
    """One thread, as torchrun gives each worker: on a busy 2-core machine two are several times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def stage(root: Path, env: dict) -> subprocess.Popen:
    """The train stage as a user starts it: ``python stages/train.py`` in the project."""
    return subprocess.Popen([sys.executable, str(ROOT / "stages" / "train.py")], cwd=root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One process straight through; two processes stopped by SIGTERM, then resumed."""
    tmp = tmp_path_factory.mktemp("distributed")
    one = make_project(tmp / "one", 1)
    paths = Paths(one)
    prepare_data(load(one / "params.yaml"), paths)
    with one_thread():
        train_stage(load(one / "params.yaml"), paths)
    two = make_project(tmp / "two", 2)
    shutil.copytree(one / "data" / "prepared", two / "data" / "prepared")
    audit = tmp / "audit"
    audit.mkdir()
    (audit / "sitecustomize.py").write_text(AUDIT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(audit), str(ROOT)]),
           "GENLIB_AUDIT_ROOT": str(two), "GENLIB_AUDIT_DIR": str(audit)}
    proc = stage(two, env)
    deadline = time.time() + 120
    while not list((two / ".genlib" / "resume").glob("train-*.pt")):
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    stopped = proc.communicate(timeout=120)
    resumed = stage(two, env)
    _, resumed_err = resumed.communicate(timeout=300)
    return one, two, audit, (proc.returncode, stopped[1]), (resumed.returncode, resumed_err)


def test_two_processes_train_what_one_does(runs):
    one, two, _, (code, err), (resumed, resumed_err) = runs
    assert code == 130 and "training stopped by SIGTERM; a resume checkpoint is saved" in err, err
    assert resumed == 0 and "resuming training from" in resumed_err, resumed_err
    a, b = load_torch(one / "data/model/checkpoint.pt")["state"], load_torch(two / "data/model/checkpoint.pt")["state"]
    assert a["step"] == b["step"] == 160 and a["restores"] == b["restores"] == 0
    for name, tensor in a["net"].items():
        assert torch.allclose(tensor, b["net"][name], rtol=0, atol=ATOL), name
    for rate, weights in a["ema"].items():
        for name, tensor in weights.items():
            assert torch.allclose(tensor, b["ema"][rate][name], rtol=0, atol=ATOL), (rate, name)
    assert [s for s, _ in a["history"]] == [s for s, _ in b["history"]]
    for (_, row_a), (_, row_b) in zip(a["history"], b["history"]):
        assert abs(row_a["loss"] - row_b["loss"]) <= 1e-4 * row_a["loss"]
    assert not list((two / ".genlib" / "resume").glob("*.pt"))


def test_only_rank_zero_writes(runs):
    _, two, audit, _, _ = runs
    logs = {p.name: json.loads(p.read_text()) for p in audit.glob("rank*.json")}
    assert sum(name.startswith("rank0-") for name in logs) == 2  # the stopped run and the resumed one
    assert sum(name.startswith("rank1-") for name in logs) == 2
    rank0 = [path for name, seen in logs.items() if name.startswith("rank0-") for _, path in seen]
    assert any(path.endswith("checkpoint.pt") for path in rank0)  # the hook sees the writes
    assert any("/.genlib/resume/" in path for path in rank0)
    assert all(seen == [] for name, seen in logs.items() if name.startswith("rank1-"))


def test_two_processes_generate_what_one_does(runs, tmp_path):
    # Batch i draws from stream sample/i wherever it runs, so two processes (batches 0, 2, 4 and
    # 1, 3) must give one process's samples exactly, in order, uneven last batch included.
    one = runs[0]
    two = tmp_path / "two"
    shutil.copytree(one / "data", two / "data")
    raw = yaml.safe_load((one / "params.yaml").read_text())
    raw["eval"].update({"nsamples": 300, "batch_size": 64})
    (one / "params.yaml").write_text(yaml.safe_dump(raw))
    raw["run"]["nproc_per_node"] = 2
    (two / "params.yaml").write_text(yaml.safe_dump(raw))
    with one_thread():
        single = generate_stage(load(one / "params.yaml"), Paths(one))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(ROOT / "stages" / "generate.py")], cwd=two, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    a, b = (np.load(p / "data" / "samples" / "samples.npy") for p in (one, two))
    assert a.shape == (300, 2) and np.array_equal(a, b)
    info = json.loads((two / "data" / "samples" / "info.json").read_text())
    assert info["nsamples"] == single["nsamples"] == 300 and (two / "plots" / "samples.png").is_file()


class FlakyOnOneRank(DDPM):
    """A NaN batch loss on call ``bad`` of process ``rank`` (every call, alone)."""

    def __init__(self, rank, bad):
        super().__init__(DDPMParams(50))
        self.rank, self.bad, self.calls = rank, bad, 0

    def batch_loss(self, pred, target):
        self.calls += 1
        value = super().batch_loss(pred, target)
        return value * float("nan") if self.calls == self.bad and distributed_rank() == self.rank else value


def distributed_rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def _train_flaky(rank: int, size: int, store: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=size)
    try:
        state = _run_flaky(distributed.World(rank, size, rank))
        torch.save({"net": state.net.state_dict(), "restores": state.restores}, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _run_flaky(world):
    cfg = tiny_cfg(epochs=2)
    torch.manual_seed(0)
    net = MLP((2,))
    method = FlakyOnOneRank(rank=1 if world.size > 1 else 0, bad=7)
    state = new_state(net, cfg, 16, torch.Generator().manual_seed(0), method)
    model = distributed.wrap(net, world, torch.device("cpu"), compile=False)
    return train(method, state, data(), cfg, NullLogger(), world=world, model=model)


def test_a_nan_on_one_process_restores_all(tmp_path):
    # Process 1 alone sees a NaN at step 7: both must restore the state of step 5 and redo the
    # steps together (else they would deadlock or drift apart), like one process with that NaN.
    mp.spawn(_train_flaky, args=(2, str(tmp_path / "store"), str(tmp_path)), nprocs=2)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    with one_thread():
        single = _run_flaky(distributed.World())
    assert r0["restores"] == r1["restores"] == single.restores == 1
    for name, tensor in single.net.state_dict().items():
        assert torch.equal(r0["net"][name], r1["net"][name]), name
        assert torch.allclose(r0["net"][name], tensor, rtol=0, atol=ATOL), name


class FlakyLoss(DDPM):
    """A method that computes its loss its own way: it cannot be split across processes."""

    def loss(self, net, x0, generator):
        return super().loss(net, x0, generator)


def test_bad_combinations_fail_at_the_door():
    params = ROOT / "params.yaml"
    with pytest.raises(ConfigError, match=r"training.batch_size = 1000 .*multiple of run.nproc_per_node = 3"):
        load(params, {"run.nproc_per_node": 3, "training.batch_size": 1000})
    with pytest.raises(ConfigError, match="dlpm.monte_carlo"):
        load(params, {"run.nproc_per_node": 2, "dlpm.monte_carlo": "median_of_means"})
    with pytest.raises(ConfigError, match=r"run.nproc_per_node = 2 .*computes its loss in one piece"):
        FlakyLoss(DDPMParams(10)).check_distributed(2)
    with pytest.raises(ConfigError, match=r"run.backend = 'nccl' .*nccl needs CUDA"):
        distributed.backend("nccl", torch.device("cpu"))
    assert distributed.backend("auto", torch.device("cpu")) == "gloo"
