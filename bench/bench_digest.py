"""What the tensor digests cost: saving and loading the train stage's checkpoint of the MNIST
U-Net config with and without them (:func:`genlib.weights.with_digests`, checked by
:func:`genlib.weights.digest_problem`).

The checkpoint is the one ``train`` writes: the network, its EMA, AdamW's two moments (one step
taken, so they exist), the scheduler, the generator, the config and the data shape. Saving goes
through ``genlib.io.save_torch`` (temporary file, fsync, rename) into a temporary folder; loading
through ``genlib.io.load_torch``. Each of the four is timed ``--repeats`` times, interleaved, and
the fastest kept (on a shared machine noise only slows a run down). Run at one thread:

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_digest.py [--repeats 5]
"""
from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import torch

from genlib import io
from genlib.config import build_method, load
from genlib.pipeline.keys import train_params
from genlib.pipeline.trained import build_net
from genlib.training.trainer import new_state
from genlib.weights import DIGESTS, digest_problem, with_digests

ROOT = Path(__file__).resolve().parents[1]
SHAPE = (1, 28, 28)


def checkpoint_body(params: str) -> dict:
    """The body ``train`` saves for ``params``, after one optimizer step."""
    cfg = load(params, {"data.root": str(ROOT)})
    net = build_net(cfg, SHAPE)
    state = new_state(net, cfg, 100, torch.Generator().manual_seed(0), build_method(cfg))
    for p in net.parameters():
        p.grad = torch.full_like(p, 1e-3)
    for opt in state.optimizer.values():
        opt.step()
    state.ema.update()
    return {"state": state.state_dict(), "config": train_params(cfg), "data_shape": list(SHAPE)}


def fastest(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--params", default=str(ROOT / "configs" / "mnist.yaml"))
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    body = checkpoint_body(args.params)
    n_tensors = len(with_digests(body)[DIGESTS])
    with tempfile.TemporaryDirectory() as tmp:
        plain, digested = Path(tmp) / "plain.pt", Path(tmp) / "digested.pt"
        io.save_torch(plain, body)
        io.save_torch(digested, with_digests(body))
        cases = {
            "save": (lambda: io.save_torch(plain, body), lambda: io.save_torch(digested, with_digests(body))),
            "load": (lambda: io.load_torch(plain), lambda: digest_problem(io.load_torch(digested)) or None),
        }
        rows = {}
        for name, (without, with_) in cases.items():
            a, b = [], []
            for _ in range(args.repeats):  # interleaved, so that a slow spell hits both
                a.append(fastest(without, 1))
                b.append(fastest(with_, 1))
            rows[name] = (min(a), min(b))
        size = plain.stat().st_size
        extra = digested.stat().st_size - size
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"checkpoint: {size / 1e6:.1f} MB, {n_tensors} tensors; the digests add {extra / 1e3:.1f} kB")
    print("| | without digests (s) | with digests (s) | ratio |")
    print("|---|---|---|---|")
    for name, (without, with_) in rows.items():
        print(f"| {name} | {without:.3f} | {with_:.3f} | {with_ / without:.2f} |")
    print(f"digest alone: {fastest(lambda: with_digests(body), args.repeats):.3f} s per checkpoint")


if __name__ == "__main__":
    main()
