"""Discriminator Flow beside the GAN on 2D data (gmm_grid), one process, one thread: w1, MMD,
modes, network evaluations per sample and the wall time of train + generate + evaluate.
Run: OMP_NUM_THREADS=1 .venv/bin/python bench/bench_discr_flow_2d.py"""
import tempfile
import time

import torch

from genlib.config import load
from genlib.pipeline.evaluate import evaluate_stage
from genlib.pipeline.generate import generate_stage
from genlib.pipeline.paths import Paths
from genlib.pipeline.prepare import prepare_data
from genlib.pipeline.train import train_stage

torch.set_num_threads(1)
OVER = {"data.dataset": "gmm_grid", "data.nsamples": 8192, "data.ntest": 4000, "training.epochs": 40,
        "training.batch_size": 512, "eval.nsamples": 4000, "eval.batch_size": 4000, "eval.n_exact": 2000,
        "eval.n_mmd": 2000, "run.progress": "never"}
KEYS = ("w1_sliced", "mmd", "mode_weight_l1", "precision", "recall", "network_evals")

for method, extra in [("gan", {}), ("discr_flow", {}), ("discr_flow", {"discr_flow.lr": 1e-3})]:
    paths = Paths(tempfile.mkdtemp())
    cfg = load("params.yaml", {**OVER, **extra, "method": method})
    prepare_data(cfg, paths)
    start = time.time()
    train_stage(cfg, paths)
    generate_stage(cfg, paths)
    metrics = evaluate_stage(cfg, paths)
    print(method, extra, {k: round(metrics[k], 4) for k in KEYS}, f"{time.time() - start:.1f} s", flush=True)
