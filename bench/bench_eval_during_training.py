"""What the evaluation during training costs.

Points (the default): the default run (DLPM on sas_grid, 100 epochs of batch 1024) with
``data.nval`` validation points and ``training.eval_every``, its evaluations timed inside the loop.
Images (``--images``): ``configs/mnist.yaml`` (DDPM, the small U-Net) on real MNIST through the
stages themselves (``prepare_data``, which trains the evaluation classifier, then ``train_stage``),
scoring ``fid_clf`` and ``kid_clf`` on ``--nval`` validation images. Run at one thread:

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_eval_during_training.py [--nval 2000] [--every 500]
    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_eval_during_training.py --images --nval 1000 --every 100 \
        --max-train 12800 --nsamples 500
"""
from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import torch

from genlib.config import build_method, load
from genlib.data.splits import hold_out
from genlib.pipeline.paths import Paths
from genlib.pipeline.prepare import prepare_data
from genlib.pipeline.train import train_stage
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
    parser.add_argument("--images", action="store_true", help="configs/mnist.yaml on MNIST, fid_clf and kid_clf")
    parser.add_argument("--max-train", type=int, default=12800, help="--images: training images (batch 64)")
    parser.add_argument("--nsamples", type=int, default=500, help="--images: training.eval_nsamples")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.images:
        images(args)
        return
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


def images(args) -> None:
    cfg = load(ROOT / "configs" / "mnist.yaml", {
        "data.root": str(ROOT / "../shared/datasets/mnist/raw"), "data.max_train": args.max_train, "data.nval": args.nval,
        "training.eval_every": args.every, "training.eval_nsamples": args.nsamples,
        "training.eval_metrics": ["fid_clf", "kid_clf"], "training.monitor": "fid_clf", "run.progress": "never"})
    spent: list[float] = []
    score = ValidationEvaluation.__call__

    def timed(self, state):
        start = time.perf_counter()
        out = score(self, state)
        spent.append(time.perf_counter() - start)
        return out

    ValidationEvaluation.__call__ = timed
    with tempfile.TemporaryDirectory() as tmp:
        paths = Paths(Path(tmp))
        prepare_data(cfg, paths)
        metrics = train_stage(cfg, paths)
    seconds = metrics["train_time_s"]  # the training loop's, evaluations included
    t = cfg.training
    rows_eval, rows_train = t.eval_nsamples * t.eval_reverse_steps, args.every * t.batch_size
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, 1 thread")
    print(f"{metrics['train_steps']} steps in {seconds:.1f} s; {len(spent)} evaluations of {t.eval_nsamples} samples "
          f"({t.eval_reverse_steps} steps, {', '.join(t.eval_metrics)}, against {args.nval} validation images) took "
          f"{sum(spent):.1f} s ({sum(spent) / len(spent):.2f} s each): {sum(spent) / seconds:.1%} of the loop's time, "
          f"{sum(spent) / (seconds - sum(spent)):.1%} on top of the training without them")
    print(f"rows through the network: {rows_eval} forward per evaluation, {rows_train} forward and backward "
          f"in the {args.every} steps between two")


if __name__ == "__main__":
    main()
