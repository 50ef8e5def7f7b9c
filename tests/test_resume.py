"""Kill training at a random step, run it again: the result equals an uninterrupted run. A resume
file that does not belong to this training, or is corrupt, crafted or malformed, is set aside."""
import copy
import io
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch
import yaml

from genlib.pipeline.paths import Paths
from genlib.pipeline.prepare import prepare_data
from genlib.pipeline.resume import training_key
from genlib.pipeline.runner import stage_main
from genlib.pipeline.train import train_stage
from genlib.config import load
from genlib.io import load_torch

from test_config import ROOT

TINY = {
    "data": {"nsamples": 2048, "ntest": 500},
    "training": {"epochs": 30, "batch_size": 256, "ema_rates": [0.9, 0.99]},
    "model": {"dropout": 0.1},  # so the global RNG matters too
    "dlpm": {"diffusion_steps": 20},
    "eval": {"reverse_steps": 20},
    "run": {"log_every": 7, "checkpoint_freq": 10, "progress": "never"},
}
STAGE = "from genlib.pipeline.runner import stage_main; from genlib.pipeline.train import train_stage; stage_main('train', train_stage)"


def make_project(path: Path) -> Path:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for section, values in TINY.items():
        raw[section].update(values)
    path.mkdir(parents=True, exist_ok=True)
    (path / "params.yaml").write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = make_project(tmp_path_factory.mktemp("uninterrupted"))
    cfg = load(root / "params.yaml")
    paths = Paths(root)
    prepare_data(cfg, paths)
    train_stage(cfg, paths)
    return root, cfg


def start(root: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", STAGE], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_resume_file(root: Path, proc: subprocess.Popen) -> Path:
    deadline = time.time() + 120
    while time.time() < deadline:
        files = list((root / ".genlib" / "resume").glob("train-*.pt"))
        if files:
            return files[0]
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    raise AssertionError("no resume checkpoint appeared")


def assert_same_training(a: Path, b: Path) -> None:
    ca, cb = load_torch(a / "data/model/checkpoint.pt"), load_torch(b / "data/model/checkpoint.pt")
    for key in ("net",):
        for name, tensor in ca["state"][key].items():
            assert torch.equal(tensor, cb["state"][key][name]), name
    for rate, weights in ca["state"]["ema"].items():
        for name, tensor in weights.items():
            assert torch.equal(tensor, cb["state"]["ema"][rate][name]), (rate, name)
    assert ca["state"]["step"] == cb["state"]["step"]
    curve = "plots/train/plots/metrics/loss.tsv"
    assert (a / curve).read_text() == (b / curve).read_text()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_kill_and_resume_equals_uninterrupted(reference, tmp_path, sig):
    ref_root, cfg = reference
    root = make_project(tmp_path / "run")
    shutil.copytree(ref_root / "data" / "prepared", root / "data" / "prepared")
    proc = start(root)
    wait_for_resume_file(root, proc)
    time.sleep(random.Random(sig).uniform(0.0, 0.4))
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert not (root / "data/model/checkpoint.pt").exists(), "training finished before the kill"
    if sig != signal.SIGKILL:
        assert proc.returncode == 130 and "resume checkpoint is saved" in err
    resumed = subprocess.run([sys.executable, "-c", STAGE], cwd=root, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming training from" in resumed.stderr
    assert not list((root / ".genlib" / "resume").glob("*.pt")), "the resume file outlived the run"
    assert_same_training(ref_root, root)


@pytest.fixture(scope="module")
def left_behind(reference, tmp_path_factory):
    """The body of a real resume file, left by a training killed (SIGKILL) halfway."""
    ref_root, cfg = reference
    root = make_project(tmp_path_factory.mktemp("killed"))
    shutil.copytree(ref_root / "data" / "prepared", root / "data" / "prepared")
    proc = start(root)
    file = wait_for_resume_file(root, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    return torch.load(file, weights_only=True)


def _first_tensor(weights: dict) -> str:
    return next(iter(weights))


def _reshape_first(weights: dict) -> None:
    weights[_first_tensor(weights)] = weights[_first_tensor(weights)][:1]


def _nan_first(weights: dict) -> None:
    weights[_first_tensor(weights)] = torch.full_like(weights[_first_tensor(weights)], float("nan"))


MARKER = Path(tempfile.gettempdir()) / f"genlib-resume-marker-{os.getpid()}"
RESUME_CASES = [
    # (what is done to the body of a real resume file, or the bytes written instead; words of the line)
    (b"not a checkpoint", "corrupt or unreadable file (UnpicklingError: Unsupported operand 110)"),
    ("crafted", "refused: it asks for the Python global exec"),
    (lambda b: b.update(state=[]), "it holds no training state"),
    (lambda b: b["state"].pop("ema"), "its training state lacks ema"),
    (lambda b: b["state"]["ema"].pop("0.9"), "it holds no EMA of rate 0.9"),
    (lambda b: _reshape_first(b["state"]["net"]), "its weights ('net') do not fit the network"),
    (lambda b: b["state"]["net"].pop(_first_tensor(b["state"]["net"])), "missing 1 of the network's"),
    (lambda b: _nan_first(b["state"]["ema"]["0.99"]), "its EMA of rate 0.99 does not fit the network: NaN or inf"),
    (lambda b: b["state"].update(step="7"), "its step (str) not of the type training keeps"),
    (lambda b: b["state"].update(generator=torch.zeros(3, dtype=torch.uint8)), "its training state does not load (RuntimeError"),
    (lambda b: b["state"].update(optimizer={}), "its training state does not load (KeyError"),
]


def _resume_bytes(left_behind: dict, change) -> bytes:
    if isinstance(change, bytes):
        return change
    if change == "crafted":
        body = {"state": {"net": WritesMarker(MARKER)}}
    else:
        body = copy.deepcopy(left_behind)
        change(body)
    buf = io.BytesIO()
    torch.save(body, buf)
    return buf.getvalue()


class WritesMarker:
    """Unpickled, it writes a marker file: how a crafted resume file would run code."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('ran')",))


@pytest.mark.parametrize("change,words", RESUME_CASES, ids=[w for _, w in RESUME_CASES])
def test_bad_resume_file_is_set_aside(reference, left_behind, tmp_path, monkeypatch, capsys, change, words):
    """A corrupt, crafted or malformed resume file never blocks a run: it is set aside in stale/
    with one line naming it and what is wrong, and training from step 0 equals an uninterrupted run."""
    ref_root, cfg = reference
    root = make_project(tmp_path / "run")
    shutil.copytree(ref_root / "data" / "prepared", root / "data" / "prepared")
    bad = root / ".genlib" / "resume" / f"train-{training_key(cfg)}.pt"
    bad.parent.mkdir(parents=True)
    content = _resume_bytes(left_behind, change)
    bad.write_bytes(content)
    MARKER.unlink(missing_ok=True)
    monkeypatch.chdir(root)
    stage_main("train", train_stage)
    err = capsys.readouterr().err.strip().splitlines()
    said = [line for line in err if "set aside" in line]
    assert len(said) == 1 and str(bad.relative_to(root)) in said[0] and words in said[0], err
    assert "Traceback" not in "\n".join(err) and not any("resuming" in line for line in err)
    assert not MARKER.exists(), "the crafted file ran code"
    assert (bad.parent / "stale" / bad.name).read_bytes() == content and not bad.exists()
    assert_same_training(ref_root, root)


def test_resume_file_of_other_data_is_set_aside(reference, tmp_path):
    """The resume file's identity covers the training data: after the data changed, the old
    state is moved to stale/ with one line saying why, and training starts from step 0."""
    import numpy as np

    ref_root, cfg = reference
    root = make_project(tmp_path / "run")
    shutil.copytree(ref_root / "data" / "prepared", root / "data" / "prepared")
    proc = start(root)
    resume_file = wait_for_resume_file(root, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    train = root / "data" / "prepared" / "train.npy"
    np.save(train, np.load(train) * 1.001)
    run = subprocess.run([sys.executable, "-c", STAGE], cwd=root, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "resuming training" not in run.stderr
    assert "set aside" in run.stderr and "the training data changed" in run.stderr
    assert (root / ".genlib" / "resume" / "stale" / resume_file.name).is_file()


def test_resume_file_without_identity_is_set_aside(reference, tmp_path):
    """A resume file from before identities (or of unknown origin) is never resumed."""
    ref_root, cfg = reference
    root = make_project(tmp_path / "run")
    shutil.copytree(ref_root / "data" / "prepared", root / "data" / "prepared")
    old = root / ".genlib" / "resume" / f"train-{training_key(cfg)}.pt"
    old.parent.mkdir(parents=True)
    torch.save({"state": {"step": 5}, "config": {}}, old)
    run = subprocess.run([sys.executable, "-c", STAGE], cwd=root, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "without an identity" in run.stderr and "resuming" not in run.stderr
    assert_same_training(ref_root, root)
