"""What the evaluation during training costs at the defaults: the default run (DLPM on sas_grid,
100 epochs of batch 1024) with ``data.nval`` validation points and ``training.eval_every``, its
evaluations timed inside the loop. Run at one thread:

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_eval_during_training.py [--nval 2000] [--every 500]
"""
from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from genlib.config import build_method, load
from genlib.data.splits import hold_out
from genlib.pipeline.trained import build_net
from genlib.registry import DATASETS
from genlib.seeding import generator
from genlib.sizes import steps_per_epoch
from genlib.training.evaluation import ValidationEvaluation
from genlib.training.logger import NullLogger
from genlib.training.trainer import new_state, train

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nval", type=int, default=2000)
    parser.add_argument("--every", type=int, default=500)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = load(ROOT / "params.yaml", {"data.nval": args.nval, "training.eval_every": args.every, "run.progress": "never"})
    splits = DATASETS.get(cfg.data.dataset)(cfg.data).load(generator(cfg.seed, "data"))
    splits, val = hold_out(splits, cfg.data.nval, generator(cfg.seed, "data/validation"))
    method = build_method(cfg)
    total = cfg.training.epochs * steps_per_epoch(splits.train.shape[0], cfg.training.batch_size)
    state = new_state(build_net(cfg, (2,)), cfg, total, generator(cfg.seed, "train"), method)
    evaluation = ValidationEvaluation(method, val, cfg, torch.device("cpu"))
    spent: list[float] = []

    def timed(s):
        start = time.perf_counter()
        out = evaluation(s)
        spent.append(time.perf_counter() - start)
        return out

    start = time.perf_counter()
    train(method, state, splits.train, cfg, NullLogger(), evaluate=timed)
    seconds = time.perf_counter() - start
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, 1 thread")
    print(f"{total} steps in {seconds:.1f} s; {len(spent)} evaluations of {cfg.training.eval_nsamples} samples "
          f"({cfg.training.eval_reverse_steps} steps, {', '.join(cfg.training.eval_metrics)}) took {sum(spent):.1f} s "
          f"({sum(spent) / len(spent):.2f} s each): {sum(spent) / seconds:.1%} of the training time")


if __name__ == "__main__":
    main()
