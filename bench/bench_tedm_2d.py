"""t-EDM beside EDM on heavy-tailed 2D data (sas: isotropic alpha-stable, or skewed_levy; data_alpha 1.7),
one process, one thread: tail_error, w1, MMD and network evaluations per sample.
Run: OMP_NUM_THREADS=1 .venv/bin/python bench/bench_tedm_2d.py DATASET [seed ...]"""
import sys, tempfile, time, torch
torch.set_num_threads(1)
from genlib.config import load
from genlib.pipeline.paths import Paths
from genlib.pipeline.prepare import prepare_data
from genlib.pipeline.train import train_stage
from genlib.pipeline.generate import generate_stage
from genlib.pipeline.evaluate import evaluate_stage
dataset, seeds = sys.argv[1], [int(s) for s in sys.argv[2:]] or [0]
over = {"data.dataset": dataset, "data.nsamples": 8192, "data.ntest": 4000, "training.epochs": 40, "training.batch_size": 512,
        "eval.nsamples": 4000, "eval.batch_size": 4000, "eval.n_exact": 2000, "eval.n_mmd": 2000, "run.progress": "never",
        "eval.reverse_steps": 18}
keys = ("tail_error", "tail_q0.99_gen", "tail_q0.999_gen", "tail_q0.99_ref", "tail_q0.999_ref", "w1_exact", "w1_sliced", "mmd", "network_evals")
for seed in seeds:
    for method, extra in [("edm", {}), ("tedm", {"tedm.nu": 3.0}), ("tedm", {"tedm.nu": 5.0})]:
        d = tempfile.mkdtemp(); p = Paths(d)
        cfg = load("params.yaml", {**over, **extra, "method": method, "seed": seed})
        prepare_data(cfg, p); t = time.time(); train_stage(cfg, p); generate_stage(cfg, p); m = evaluate_stage(cfg, p)
        print(dataset, seed, method, extra, {k: round(m[k], 4) for k in keys if k in m}, round(time.time() - t, 1), flush=True)
