"""The bound of ``bench/gpu_check.sh``: steps per second of the bare network of a params file on
its device, in its precision and compile mode (``run.*``): forward, MSE against a fixed target,
backward and an AdamW step on a batch of ``training.batch_size`` images, nothing else (no
method, no noise, no EMA, no logging). Warm-up steps first (``torch.compile`` compiles there),
then the timed steps, with the device synchronised before each clock read.

    python bench/gpu_bare.py params.yaml [--steps 200] [--warmup 20]

Prints ``bare <steps/s>``.
"""
from __future__ import annotations

import argparse
import time

import torch

from genlib.config import load
from genlib.device import autocast, check_precision, compiled, resolve_device
from genlib.pipeline.trained import build_net


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_rate(cfg, shape: tuple[int, ...], steps: int, warmup: int) -> float:
    device = resolve_device(cfg.run.device)
    check_precision(cfg.run.precision, device)
    batch = cfg.training.batch_size
    net = build_net(cfg, shape).to(device)
    forward = compiled(net, cfg.run.compile)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.optim.lr)
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.rand(batch, *shape, device=device, generator=gen) * 2 - 1
    t = torch.rand(batch, device=device, generator=gen)
    target = torch.randn(batch, *shape, device=device, generator=gen)

    def step() -> None:
        with autocast(device, cfg.run.precision):
            out = forward(x, t)
        loss = (out.float() - target).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return steps / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("params")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--shape", type=int, nargs="+", default=[1, 28, 28], help="one image's shape (MNIST's)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = load(args.params)
    print(f"bare {bare_rate(cfg, tuple(args.shape), args.steps, args.warmup):.2f}")


if __name__ == "__main__":
    main()
