"""EDM beside DDPM on 2D data (gmm_grid), one process, one thread: w1, MMD, modes and network
evaluations per sample. Run: OMP_NUM_THREADS=1 .venv/bin/python bench/bench_edm_2d.py"""
import sys, tempfile, time, torch
torch.set_num_threads(1)
from genlib.config import load
from genlib.pipeline.paths import Paths
from genlib.pipeline.prepare import prepare_data
from genlib.pipeline.train import train_stage
from genlib.pipeline.generate import generate_stage
from genlib.pipeline.evaluate import evaluate_stage
over = {"data.dataset": "gmm_grid", "data.nsamples": 8192, "data.ntest": 4000, "training.epochs": 40, "training.batch_size": 512,
        "eval.nsamples": 4000, "eval.batch_size": 4000, "eval.n_exact": 2000, "eval.n_mmd": 2000, "run.progress": "never"}
for method, extra in [("ddpm", {"eval.reverse_steps": 100}), ("edm", {"eval.reverse_steps": 18, "edm.sigma_data": 1.0}),
                      ("edm", {"eval.reverse_steps": 18, "edm.sigma_data": 1.0, "eval.sampler": "stochastic"})]:
    d = tempfile.mkdtemp(); p = Paths(d)
    cfg = load("params.yaml", {**over, **extra, "method": method})
    prepare_data(cfg, p); t = time.time(); train_stage(cfg, p); generate_stage(cfg, p); m = evaluate_stage(cfg, p)
    print(method, extra, {k: round(m[k], 4) for k in ("w1_sliced", "mmd", "mode_weight_l1", "precision", "recall", "network_evals")}, round(time.time() - t, 1), flush=True)
