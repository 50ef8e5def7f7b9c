"""Training and sampling speed of a config against the bare network, and how time grows with
the batch size and the number of reverse steps.

Bound measured in the same run: the bare network's forward + backward + AdamW step on a batch of
the same size (no method, no noise, no EMA, no logging) for training, and ``reverse_steps`` bare
forward passes for sampling. Measurements alternate between genlib and the bound, repeated, and
the fastest repeat of each is compared: on a shared machine noise only ever slows a run down, so
the best of several repeats is the closest to what the code costs (the estimator ``timeit``
uses), and alternating keeps a noisy spell from falling on one side only. Image configs train on random
uint8 images through the dataset's own dequantization, as the pipeline does.

    .venv/bin/python bench/bench_speed.py [--method dlpm] [--repeats 5]
    .venv/bin/python bench/bench_speed.py --params configs/mnist.yaml --shape 1 28 28 \
        --train-steps 10 --repeats 3 --batch-sizes 32 64 128 --steps-list 10 25 50
"""
from __future__ import annotations

import argparse
import dataclasses
import platform
import time
from pathlib import Path

import torch

from genlib.config import build_method, load
from genlib.device import denormals_flushed, resolve_device
from genlib.pipeline.trained import build_net
from genlib.registry import DATASETS
from genlib.training.logger import NullLogger
from genlib.training.trainer import new_state, train

ROOT = Path(__file__).resolve().parents[1]


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_training(cfg, method, data, steps: int, batch: int) -> tuple[float, float]:
    """Steps per second of genlib's loop and of the bare network step."""
    cfg = dataclasses.replace(cfg, training=dataclasses.replace(cfg.training, epochs=1, batch_size=batch))
    x = data[: steps * batch]
    shape = tuple(data.shape[1:])
    transform = DATASETS.get(cfg.data.dataset).input_transform(cfg.data)

    state = new_state(build_net(cfg, shape), cfg, steps, torch.Generator().manual_seed(0), method)

    def genlib_loop():  # the whole loop: noise, loss, step, EMA, logging, NaN checks, snapshots
        state.step = 0
        train(method, state, x, cfg, NullLogger(), transform=transform)

    net = build_net(cfg, shape)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.optim.lr)
    t = torch.rand(batch)
    target = torch.randn(batch, *shape)
    xf = x.float() / 127.5 - 1 if x.dtype == torch.uint8 else x

    def bare_loop():
        for i in range(steps):
            xb = xf[i * batch : (i + 1) * batch]
            loss = (net(xb, t) - target).pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    return steps / timed(genlib_loop), steps / timed(bare_loop)


def bench_sampling(cfg, method, n: int, steps: int, shape: tuple[int, ...]) -> tuple[float, float]:
    """Points per second of genlib's sampler and of ``steps`` bare forward passes."""
    net = build_net(cfg, shape).eval()
    opts = cfg.eval.sample_options()

    def genlib_sample():
        method.sample(net, (n, *shape), steps, torch.Generator().manual_seed(0), opts)

    x = torch.randn(n, *shape)

    @torch.inference_mode()
    def bare_sample():
        for s in range(steps, 0, -1):
            net(x, torch.full((n,), s / steps))

    return n / timed(genlib_sample), n / timed(bare_sample)


def best(rows: list[tuple[float, float]]) -> tuple[float, float]:
    """The highest rate of genlib and of the bound over the repeats."""
    return max(r[0] for r in rows), max(r[1] for r in rows)


def ratio_rows(name: str, unit: str, rows: list[tuple[float, float]]) -> str:
    ours, bare = best(rows)
    return f"{name:7s} genlib {ours:10.1f} {unit}   bare network {bare:10.1f} {unit}   ratio {ours / bare:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--params", default=str(ROOT / "params.yaml"))
    ap.add_argument("--method", default=None)
    ap.add_argument("--sampler", default="default")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--train-steps", type=int, default=100)
    ap.add_argument("--shape", type=int, nargs="+", default=[2], help="one item's shape, e.g. 1 28 28")
    ap.add_argument("--nsamples", type=int, default=None, help="points per sampling batch (default eval.batch_size)")
    ap.add_argument("--batch-sizes", type=int, nargs="*", default=[], help="also time training at these batch sizes")
    ap.add_argument("--steps-list", type=int, nargs="*", default=[], help="also time sampling at these reverse steps")
    args = ap.parse_args()
    overrides = {"eval.sampler": args.sampler}
    if args.method:
        overrides["method"] = args.method
    cfg = load(args.params, overrides)
    # The math mode the train and generate stages run in, for genlib and the bound alike.
    with denormals_flushed(resolve_device(cfg.run.device)):
        measure(args, cfg)


def measure(args, cfg) -> None:
    method = build_method(cfg)
    shape = tuple(args.shape)
    batch, n, steps = cfg.training.batch_size, args.nsamples or cfg.eval.batch_size, cfg.eval.reverse_steps
    biggest = max([batch, *args.batch_sizes])
    if cfg.data_kind == "images":
        data = torch.randint(0, 256, (args.train_steps * biggest, *shape), dtype=torch.uint8)
    else:
        data = torch.randn(args.train_steps * biggest, *shape)
    rows = {"train": [], "sample": []}
    for _ in range(args.repeats):
        rows["train"].append(bench_training(cfg, method, data, args.train_steps, batch))
        rows["sample"].append(bench_sampling(cfg, method, n, steps, shape))
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}")
    print(f"config: {Path(args.params).name} method={cfg.method} sampler={method.sampler_name(cfg.eval.sample_options())} "
          f"batch={batch} net={cfg.model_net} shape={shape} reverse_steps={steps} n={n}")
    print(ratio_rows("train", "steps/s", rows["train"]))
    print(ratio_rows("sample", "points/s", rows["sample"]))
    if args.batch_sizes:
        print("\n| batch size | genlib steps/s | bare steps/s | ratio | genlib ms per item |\n|---|---|---|---|---|")
        for b in args.batch_sizes:
            r = [bench_training(cfg, method, data, args.train_steps, b) for _ in range(args.repeats)]
            ours, bare = best(r)
            print(f"| {b} | {ours:.2f} | {bare:.2f} | {ours / bare:.2f} | {1000 / (ours * b):.3f} |")
    if args.steps_list:
        print("\n| reverse steps | genlib s per batch | bare s per batch | ratio (bare / genlib time) |\n|---|---|---|---|")
        for k in args.steps_list:
            r = [bench_sampling(cfg, method, n, k, shape) for _ in range(args.repeats)]
            ours, bare = best(r)
            print(f"| {k} | {n / ours:.3f} | {n / bare:.3f} | {ours / bare:.2f} |")


if __name__ == "__main__":
    main()
