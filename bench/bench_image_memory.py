"""Training on prepared image sets larger than the memory the process may use, and whether the
loader keeps up with the network.

Memory: synthetic uint8 CIFAR-shaped sets (3x32x32) of growing size are written with the
pipeline's own incremental writer (``io.save_array_chunks``, as ``prepare_data`` writes a folder's
images); each is trained on for ``--steps`` steps of a small U-Net in a fresh process whose data
memory is capped (``RLIMIT_DATA``, ``--cap-mb``: the heap and every private writable mapping, so
every tensor and array; not the code, nor a reservation of address space never written), once read from disk a batch at a time
(``run.whole_set_mb: 0``) and once held whole (the control). Recorded: the peak resident memory
(``ru_maxrss``) of each run against the set's size; it must stay flat from disk, while the whole
set grows with it and fails once the set passes the cap; and the peak of reading every image of
the set once, an epoch's batches in a shuffled order, without training.

Throughput: at the network and batch of ``configs/mnist.yaml`` (on 1x28x28, and on 3x32x32 with
attention at 8x8 for CIFAR-10), images per second of the disk loader alone (batches of a shuffled
order, read ahead by its threads, as the loop asks for them) against images per second of the
training loop on the set held whole (the bound, measured in the same run), and the loop's rate when
it reads from disk. A loader/training ratio above 1 means the loader is not the bottleneck.

    .venv/bin/python bench/bench_image_memory.py [--sizes-mb 256 512 1024 2048] [--cap-mb 1024] [--steps 40] [--part memory]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from genlib import io
from genlib.config import build_method, load
from genlib.errors import DataError, TrainingInterrupted
from genlib.pipeline.train import training_set
from genlib.pipeline.trained import build_net
from genlib.registry import DATASETS
from genlib.training.batches import FromDisk
from genlib.training.logger import NullLogger
from genlib.training.trainer import new_state, train

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")
SMALL_NET = {"model.net": "unet", "model.channels": 8, "model.channel_mult": [1, 2, 2], "model.num_res_blocks": 1,
             "model.groups": 4, "model.attention_resolutions": [8]}


def config(params: Path, overrides: dict):
    return load(params, {"method": "ddpm", "data.dataset": "cifar10", "data.root": "unused", "run.progress": "never",
                         "training.eval_every": 0, **overrides})


def write_set(path: Path, n: int, shape: tuple[int, ...], chunk: int = 8192) -> None:
    """``n`` random uint8 images, written chunk by chunk as prepare_data writes a folder's."""
    rng = np.random.default_rng(0)
    parts = (rng.integers(0, 256, (min(chunk, n - i), *shape), dtype=np.uint8) for i in range(0, n, chunk))
    io.save_array_chunks(path, (n, *shape), np.uint8, parts)


def train_steps(cfg, data, steps: int) -> float:
    """Seconds for ``steps`` steps of the training loop on ``data`` (a tensor or a batch source)."""
    shape = tuple(data.item_shape if isinstance(data, FromDisk) else data.shape[1:])
    method = build_method(cfg)
    state = new_state(build_net(cfg, shape), cfg, 10**9, torch.Generator().manual_seed(0), method)
    transform = DATASETS.get(cfg.data.dataset).input_transform(cfg.data)
    start = time.perf_counter()
    try:
        train(method, state, data, cfg, NullLogger(), should_stop=lambda: state.step >= steps, transform=transform)
    except TrainingInterrupted:
        pass
    return time.perf_counter() - start


def child(path: Path, cap_mb: int, steps: int, whole: bool, epoch: bool) -> None:
    """One capped run; prints a JSON line."""
    torch.set_num_threads(1)
    cap = cap_mb * 2**20
    resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
    cfg = config(ROOT / "params.yaml", {**SMALL_NET, "training.batch_size": 64})
    out: dict = {"whole": whole}
    if epoch:  # every image of the set once, in a shuffled order, as an epoch's batches
        source = FromDisk(path, CPU)
        out["images_per_s"] = loader_rate(source, 64, source.n // 64)
    else:
        _train_run(cfg, path, steps, whole, out)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def _train_run(cfg, path: Path, steps: int, whole: bool, out: dict) -> None:
    try:
        data = training_set(path, CPU, whole_mb=10**6 if whole else 0)
        out["seconds"] = train_steps(cfg, data if isinstance(data, FromDisk) else data.data, steps)
        data.close()
    except (MemoryError, DataError, RuntimeError) as err:  # numpy, genlib's reader, torch's allocator
        out["error"] = f"{type(err).__name__}: {str(err).splitlines()[0][-60:]}"


def memory_table(sizes_mb: list[int], cap_mb: int, steps: int, folder: Path) -> list[str]:
    shape = (3, 32, 32)
    rows = [f"| set (MiB) | images | cap (MiB) | from disk: peak RSS (MiB) | s/{steps} steps | held whole: peak RSS (MiB) "
            "| a whole epoch read from disk: peak RSS (MiB) | img/s |", "|---|---|---|---|---|---|---|---|"]
    for size in sizes_mb:
        n = size * 2**20 // int(np.prod(shape))
        path = folder / f"train-{size}.npy"
        write_set(path, n, shape)
        runs = []
        for mode in ([], ["--whole"], ["--epoch"]):
            cmd = [sys.executable, __file__, "--child", str(path), "--cap-mb", str(cap_mb), "--steps", str(steps), *mode]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode:
                raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr}")
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        disk, held, epoch = runs
        held_cell = f"{held['peak_rss_mb']:.0f}" if "error" not in held else f"fails ({held['error'].split(':')[0]})"
        rows.append(f"| {size} | {n} | {cap_mb} | {disk['peak_rss_mb']:.0f} | {disk['seconds']:.1f} | {held_cell} "
                    f"| {epoch['peak_rss_mb']:.0f} | {epoch['images_per_s']:.0f} |")
        print(rows[-1], flush=True)
        path.unlink()
    return rows


def loader_rate(source: FromDisk, batch: int, batches: int) -> float:
    """Images per second the disk loader hands over, in a shuffled order, with nothing else running."""
    perm = torch.randperm(source.n, generator=torch.Generator().manual_seed(0))
    per_epoch = source.n // batch
    start = time.perf_counter()
    for i in range(batches):
        source.batch(perm, i % per_epoch, batch)
    seconds = time.perf_counter() - start
    source.close()
    return batches * batch / seconds


def throughput_table(folder: Path, steps: int, repeats: int) -> list[str]:
    rows = ["| config | shape | batch | loader (img/s) | training, set held whole (img/s) | training, from disk (img/s) | loader / training |",
            "|---|---|---|---|---|---|---|"]
    mnist = ROOT / "configs" / "mnist.yaml"
    for name, shape, n, extra in (("configs/mnist.yaml", (1, 28, 28), 60000, {}),
                                  ("mnist.yaml net, CIFAR-10 shape", (3, 32, 32), 50000, {"model.attention_resolutions": [8]})):
        cfg = config(mnist, extra)
        batch = cfg.training.batch_size
        path = folder / "throughput.npy"
        write_set(path, n, shape)
        whole = torch.from_numpy(np.load(path))
        best = {"loader": 0.0, "whole": 0.0, "disk": 0.0}
        for _ in range(repeats):  # alternating, best of the repeats (noise only slows a run down)
            best["loader"] = max(best["loader"], loader_rate(FromDisk(path, CPU), batch, 400))
            best["whole"] = max(best["whole"], steps * batch / train_steps(cfg, whole, steps))
            disk = FromDisk(path, CPU)
            best["disk"] = max(best["disk"], steps * batch / train_steps(cfg, disk, steps))
            disk.close()
        rows.append(f"| {name} | {'x'.join(map(str, shape))} | {batch} | {best['loader']:.0f} | {best['whole']:.0f} | "
                    f"{best['disk']:.0f} | {best['loader'] / best['whole']:.0f} |")
        print(rows[-1], flush=True)
        path.unlink()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mb", type=int, nargs="+", default=[256, 512, 1024, 2048])
    parser.add_argument("--cap-mb", type=int, default=1024, help="RLIMIT_DATA of each training process")
    parser.add_argument("--steps", type=int, default=40, help="training steps per set in the memory runs")
    parser.add_argument("--train-steps", type=int, default=20, help="training steps per throughput measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--part", choices=("memory", "throughput", "both"), default="both")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--whole", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--epoch", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.cap_mb, args.steps, args.whole, args.epoch)
        return
    torch.set_num_threads(1)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, 1 thread", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        if args.part != "throughput":
            memory_table(args.sizes_mb, args.cap_mb, args.steps, Path(tmp))
        if args.part != "memory":
            throughput_table(Path(tmp), args.train_steps, args.repeats)


if __name__ == "__main__":
    main()
