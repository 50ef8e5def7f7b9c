"""The ``generate`` stage: sample ``eval.nsamples`` items from the trained model.

Samples come in batches of ``eval.batch_size``; batch ``i`` draws from its own seed stream, so the
samples do not depend on how the batches are shared out. With ``run.nproc_per_node > 1`` the
stage starts itself again under torchrun and process ``r`` of ``N`` samples batches
``r, r + N, ...``; rank 0 gathers them in order and writes. The result equals one process's on
the same kind of device.
"""
from __future__ import annotations

import time

import torch

from genlib import io
from genlib.config import Config, build_method
from genlib.device import autocast, compiled
from genlib.pipeline.kinds import kind_of
from genlib.pipeline.paths import Paths
from genlib.pipeline.prepared import read_meta
from genlib.pipeline.trained import load_trained
from genlib.pipeline.worker import on_processes, serve
from genlib.progress import display, rate, say, tracker
from genlib.seeding import generator
from genlib.training import distributed


def generate_stage(cfg: Config, paths: Paths = Paths()) -> dict:
    """Write ``data/samples/samples.npy``, ``info.json`` and ``plots/samples.png``."""
    return on_processes("generate", cfg, paths, _generate, paths.samples / "info.json")


def _generate(cfg: Config, paths: Paths, world: distributed.World, device: torch.device) -> dict:
    net, ckpt = load_trained(cfg, paths)
    meta = read_meta(paths.prepared)  # checked before sampling, used after it
    net = compiled(net.to(device), cfg.run.compile)
    method = build_method(cfg)
    options = cfg.eval.sample_options()
    shape = tuple(ckpt["data_shape"])
    shown = display(cfg.run.progress) if world.is_main else "off"
    sizes = batch_sizes(cfg.eval.nsamples, cfg.eval.batch_size)
    batches = range(world.rank, len(sizes), world.size)
    start = time.perf_counter()
    mine = {}
    # Bars follow the reverse steps of each batch; plain lines, this process's batches.
    with tracker(sum(sizes[i] for i in batches), "generate", "lines" if shown == "lines" else "off", "samples") as lines:
        for i in batches:
            g = generator(cfg.seed, f"sample/{i}", device)
            with autocast(device, cfg.run.precision):
                mine[i] = method.sample(net, (sizes[i], *shape), cfg.eval.reverse_steps, g, options, shown == "bars").cpu()
            lines.update(sizes[i])
    chunks = distributed.gather_batches(mine, world)
    if not world.is_main:
        return {}
    seconds = time.perf_counter() - start
    samples = torch.cat([chunks[i] for i in range(len(sizes))]).float()
    info = {
        "sampling_time_s": seconds,
        "samples_per_s": samples.shape[0] / seconds,
        "nsamples": int(samples.shape[0]),
        "reverse_steps": cfg.eval.reverse_steps,
        "sampler": method.sampler_name(options),
        "network_evals": method.network_evals(cfg.eval.reverse_steps, options),  # per sample
    }
    info.update(kind_of(meta).save_samples(samples, paths, meta, _title(cfg, method, info)))
    io.write_json(paths.samples / "info.json", info)
    say(cfg.run.progress, f"generate: {info['nsamples']} samples in {seconds:.1f} s ({rate(info['samples_per_s'])} samples/s), "
                          f"{_title(cfg, method, info)}")
    return info


def batch_sizes(n: int, batch: int) -> list[int]:
    """``n`` split into batches of ``batch``, the last one smaller if need be."""
    return [min(batch, n - start) for start in range(0, n, batch)]


def _title(cfg: Config, method, info: dict) -> str:
    if method.own_networks:  # a VAE or GAN: eval.reverse_steps does not apply
        return f"{cfg.method} ({info['sampler']})"
    return f"{cfg.method} ({info['sampler']}, {info['reverse_steps']} steps)"


if __name__ == "__main__":  # a torchrun worker (genlib.pipeline.worker.launch)
    serve(generate_stage)
