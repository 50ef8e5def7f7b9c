"""bench/gpu_check.sh where there is no GPU: it stops at once saying so, and its CPU dry run
goes through the same steps (the pipeline's stages, the bare network's bound, the table) with
2 gloo processes. What it measures on a GPU is in bench/RESULTS.md once it has run on one."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from dvc_project import ROOT

SCRIPT = ROOT / "bench" / "gpu_check.sh"
# the project's shared data beside it (the script's default), or the machine's
MNIST = next((p for p in (ROOT.parent / "shared" / "datasets" / "mnist" / "raw", Path("/work/shared/datasets/mnist/raw"))
              if p.is_dir()), ROOT.parent / "shared" / "datasets" / "mnist" / "raw")


def run(*args, **env):
    return subprocess.run(["bash", str(SCRIPT), *args], env={**os.environ, "PYTHON": sys.executable, **env},
                          capture_output=True, text=True)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: bench/gpu_check.sh runs for real")
def test_without_cuda_it_stops_at_once_saying_so():
    out = run()
    assert out.returncode == 2 and out.stdout == "", out.stdout + out.stderr
    assert out.stderr.startswith("gpu_check: no CUDA device here") and "--cpu-dry-run" in out.stderr, out.stderr


@pytest.mark.e2e
@pytest.mark.skipif(not MNIST.is_dir(), reason="no MNIST files in shared/datasets")
def test_the_cpu_dry_run_trains_two_processes_and_prints_the_table(tmp_path):
    out = run("--cpu-dry-run", MNIST_ROOT=str(MNIST), GPU_CHECK_DIR=str(tmp_path), GPU_CHECK_ONLY="fp32-gloo-2",
              OMP_NUM_THREADS="1")
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    row = next(line for line in lines if line.startswith("fp32-gloo-2: "))
    for part in ("steps/s, bare network ", " ratio ", " config=", " prepare_data=", " train=", " generate=", " evaluate="):
        assert part in row, row
    assert "  metrics: " in out.stdout and "fid_clf " in out.stdout, out.stdout
    assert lines[-1] == "gpu_check: done (1 runs)"
    assert yaml.safe_load((tmp_path / "params.yaml").read_text())["run"]["nproc_per_node"] == 2
    assert '"train_steps": 8' in (tmp_path / "metrics" / "train.json").read_text()  # 256 images, batch 32
