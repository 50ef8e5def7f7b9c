"""Training and sampling speed of the default 2D config against the bare network.

Bound measured in the same run: the bare network's forward + backward + AdamW step on a batch of
the same size (no method, no noise, no EMA, no logging) for training, and ``reverse_steps`` bare
forward passes for sampling. Measurements alternate between genlib and the bound, repeated, and
the medians are compared, so a noisy neighbour hits both alike.

    .venv/bin/python bench/bench_2d.py [--method dlpm] [--repeats 5]
"""
from __future__ import annotations

import argparse
import dataclasses
import platform
import statistics
import time
from pathlib import Path

import torch

from genlib.config import build_method, load
from genlib.pipeline import build_net
from genlib.training.logger import NullLogger
from genlib.training.trainer import new_state, train

ROOT = Path(__file__).resolve().parents[1]


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_training(cfg, method, data, steps: int) -> tuple[float, float]:
    """Steps per second of genlib's loop and of the bare network step."""
    cfg = dataclasses.replace(cfg, training=dataclasses.replace(cfg.training, epochs=1))
    batch = cfg.training.batch_size
    x = data[: steps * batch]

    state = new_state(build_net(cfg, (2,)), cfg, steps, torch.Generator().manual_seed(0))

    def genlib_loop():  # the whole loop: noise, loss, step, EMA, logging, NaN checks, snapshots
        state.step = 0
        train(method, state, x, cfg, NullLogger())

    net = build_net(cfg, (2,))
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.optim.lr)
    t = torch.rand(batch)
    target = torch.randn(batch, 2)

    def bare_loop():
        for i in range(steps):
            xb = x[i * batch : (i + 1) * batch]
            loss = (net(xb, t) - target).pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    return steps / timed(genlib_loop), steps / timed(bare_loop)


def bench_sampling(cfg, method, n: int, steps: int) -> tuple[float, float]:
    """Points per second of genlib's sampler and of ``steps`` bare forward passes."""
    net = build_net(cfg, (2,)).eval()
    opts = cfg.eval.sample_options()

    def genlib_sample():
        method.sample(net, (n, 2), steps, torch.Generator().manual_seed(0), opts)

    x = torch.randn(n, 2)

    @torch.inference_mode()
    def bare_sample():
        for s in range(steps, 0, -1):
            net(x, torch.full((n,), s / steps))

    return n / timed(genlib_sample), n / timed(bare_sample)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", default=None)
    ap.add_argument("--sampler", default="default")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--train-steps", type=int, default=100)
    args = ap.parse_args()
    overrides = {"eval.sampler": args.sampler}
    if args.method:
        overrides["method"] = args.method
    cfg = load(ROOT / "params.yaml", overrides)
    method = build_method(cfg)
    data = torch.randn(args.train_steps * cfg.training.batch_size, 2)
    rows = {"train": [], "sample": []}
    for _ in range(args.repeats):
        rows["train"].append(bench_training(cfg, method, data, args.train_steps))
        rows["sample"].append(bench_sampling(cfg, method, cfg.eval.batch_size, cfg.eval.reverse_steps))
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}")
    print(f"config: method={cfg.method} sampler={method.sampler_name(cfg.eval.sample_options())} batch={cfg.training.batch_size} "
          f"net={cfg.model_net}({cfg.model.nblocks}x{cfg.model.nunits}) reverse_steps={cfg.eval.reverse_steps} n={cfg.eval.batch_size}")
    for name, unit in (("train", "steps/s"), ("sample", "points/s")):
        ours = statistics.median(r[0] for r in rows[name])
        bare = statistics.median(r[1] for r in rows[name])
        print(f"{name:7s} genlib {ours:10.1f} {unit}   bare network {bare:10.1f} {unit}   ratio {ours / bare:.2f}")


if __name__ == "__main__":
    main()
