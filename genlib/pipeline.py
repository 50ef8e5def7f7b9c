"""The five pipeline steps as plain functions of (config, paths); ``stages/*.py`` call these.

Each reads its inputs, does its work and writes its outputs atomically. Nothing here knows about
DVC, so every step runs and is tested without it.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genlib import io, plots
from genlib.config import Config, build_method
from genlib.device import autocast, check_precision, compiled, denormals_flushed, resolve_device
from genlib.errors import DataError
from genlib.progress import want_progress
from genlib.registry import DATASETS, NETS
from genlib.seeding import generator, stream_seed
from genlib.training import distributed
from genlib.training.launch import launch
from genlib.training.logger import CurveLogger, NullLogger
from genlib.training.trainer import new_state, steps_per_epoch, train


@dataclass(frozen=True)
class Paths:
    """Where each stage reads and writes, relative to the project root (as in ``dvc.yaml``)."""

    root: Path = Path(".")

    @property
    def prepared(self) -> Path:
        return self.root / "data" / "prepared"

    @property
    def model(self) -> Path:
        return self.root / "data" / "model"

    @property
    def checkpoint(self) -> Path:
        return self.model / "checkpoint.pt"

    @property
    def train_log(self) -> Path:
        return self.root / "plots" / "train"

    @property
    def train_metrics(self) -> Path:
        return self.root / "metrics" / "train.json"

    @property
    def resume(self) -> Path:
        return self.root / ".genlib" / "resume"

    @property
    def samples(self) -> Path:
        return self.root / "data" / "samples"

    @property
    def samples_plot(self) -> Path:
        return self.root / "plots" / "samples.png"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics" / "eval.json"

    @property
    def analysis(self) -> Path:
        return self.root / "plots" / "analysis"

    @property
    def report(self) -> Path:
        return self.root / "plots" / "report"


# ---------------------------------------------------------------- prepare_data


def dataset(cfg: Config):
    return DATASETS.get(cfg.data.dataset)(cfg.data)


def is_images(cfg: Config) -> bool:
    return cfg.data_kind == "images"


def prepare_data(cfg: Config, paths: Paths = Paths()) -> dict:
    """Draw (2D) or load (images) the seeded train and test sets; write them with their metadata."""
    ds = dataset(cfg)
    g = generator(cfg.seed, "data")
    if is_images(cfg):
        from genlib.image_steps import prepare_images

        return prepare_images(cfg, ds, g, paths.prepared)
    train_set, test_set = ds.sample(cfg.data.nsamples, g), ds.sample(cfg.data.ntest, g)
    modes = ds.modes.clone() if ds.modes is not None else None
    norm = None
    if getattr(cfg.data, "normalized", False):
        mean, std = train_set.mean(0), train_set.std(0)
        train_set, test_set = (train_set - mean) / std, (test_set - mean) / std
        modes = (modes - mean) / std if modes is not None else None
        norm = {"mean": mean.tolist(), "std": std.tolist()}
    meta = {
        "dataset": cfg.data.dataset,
        "shape": list(train_set.shape[1:]),
        "ntrain": int(train_set.shape[0]),
        "ntest": int(test_set.shape[0]),
        "modes": modes.tolist() if modes is not None else None,
        "weights": ds.weights.tolist() if ds.weights is not None else None,
        "normalization": norm,
    }
    io.save_array(paths.prepared / "train.npy", train_set.numpy().astype(np.float32))
    io.save_array(paths.prepared / "test.npy", test_set.numpy().astype(np.float32))
    io.write_json(paths.prepared / "meta.json", meta)
    return meta


def load_points(path: Path) -> torch.Tensor:
    """A prepared data file as a tensor: uint8 images as they are, anything else as float32
    (refusing non-finite values); empty data is refused."""
    arr = io.load_array(path)
    if arr.ndim < 2 or arr.shape[0] == 0:
        raise DataError(f"{path}: expected a non-empty array of points (N, ...), got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return torch.from_numpy(np.ascontiguousarray(arr))
    if not np.isfinite(arr).all():
        raise DataError(f"{path}: {int((~np.isfinite(arr)).any(axis=tuple(range(1, arr.ndim))).sum())} points hold NaN or inf")
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))


# ---------------------------------------------------------------- train


def build_net(cfg: Config, data_shape: tuple[int, ...]) -> torch.nn.Module:
    """The ``model:`` section's network, or the method's own networks (VAE, GAN) when it has them."""
    torch.manual_seed(stream_seed(cfg.seed, "init"))  # weight init and dropout draw from here
    own = build_method(cfg).networks(data_shape)
    return own if own is not None else NETS.get(cfg.model_net)(data_shape, cfg.model)


TRAINING_SECTIONS = ("seed", "method", "data", "model", "training", "optim")


def training_key(cfg: Config) -> str:
    """A digest of everything that determines the trained weights (names the resume file)."""
    d = cfg.to_dict()
    body = json.dumps({**{k: d[k] for k in TRAINING_SECTIONS + (cfg.method,)}, "precision": cfg.run.precision}, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def train_stage(cfg: Config, paths: Paths = Paths()) -> dict:
    """Train ``cfg.method`` on the prepared training set; write the checkpoint and the curves.

    A resume checkpoint of the same training params (left by a killed or interrupted run)
    is picked up and training continues from it; SIGINT and SIGTERM save one before exiting.
    With ``run.nproc_per_node > 1`` the stage starts itself again under torchrun
    (:mod:`genlib.training.launch`); each process then trains on its share of every batch
    (:mod:`genlib.training.distributed`) and only rank 0 writes.
    """
    device = resolve_device(cfg.run.device)
    check_precision(cfg.run.precision, device)
    if cfg.run.nproc_per_node > 1 and not distributed.launched():
        distributed.check_processes(cfg.run, device)
        launch(cfg, paths.root)
        return io.read_json(paths.train_metrics)
    with distributed.joined(cfg.run, device) as (world, device), denormals_flushed(device):
        return _train(cfg, paths, world, device)


def _train(cfg: Config, paths: Paths, world: distributed.World, device: torch.device) -> dict:
    data = load_points(paths.prepared / "train.npy").to(device)
    net = build_net(cfg, tuple(data.shape[1:])).to(device)
    method = build_method(cfg)
    total = cfg.training.epochs * steps_per_epoch(data.shape[0], min(cfg.training.batch_size, data.shape[0]))
    state = new_state(net, cfg, total, generator(cfg.seed, "train", device), method)
    resume_file = paths.resume / f"train-{training_key(cfg)}.pt"
    if resume_file.is_file():
        state.load_state_dict(io.load_torch(resume_file)["state"])
        if world.is_main:
            print(f"resuming training from {resume_file} at step {state.step} of {total}", file=sys.stderr)
    if world.rank:  # each process draws its own dropout masks; rank 0 keeps one process's stream
        torch.manual_seed(stream_seed(cfg.seed, f"dropout/{world.rank}/{state.step}"))
    logger = CurveLogger(paths.train_log) if world.is_main else NullLogger()
    transform = dataset(cfg).to_model if is_images(cfg) else None  # uint8 -> [-1, 1], per batch
    for step, row in state.history:  # the curve so far, as the interrupted run logged it
        logger.log(step, row)

    def save_resume(s) -> None:
        if world.is_main:
            io.save_torch(resume_file, {"state": s.state_dict(), "config": cfg.to_dict()})

    start = time.perf_counter()
    with stop_on_signals() as stop:
        train(method, state, data, cfg, logger, on_checkpoint=save_resume,
              checkpoint_every=cfg.run.checkpoint_freq, progress=world.is_main and want_progress(cfg.run.progress),
              should_stop=stop, world=world, model=distributed.wrap(net, world, device, cfg.run.compile),
              transform=transform)
    seconds = time.perf_counter() - start
    info = {"train_steps": state.step, "train_time_s": seconds, "nan_restores": state.restores, "final_loss": logger.last.get("loss")}
    if world.is_main:
        logger.close()
        io.save_torch(
            paths.checkpoint,
            {"state": state.state_dict(), "config": cfg.to_dict(), "data_shape": list(data.shape[1:])},
        )
        io.write_json(paths.model / "config.json", cfg.to_dict())
        if hasattr(method, "export"):  # a self-contained model file (hvae.pt), the first EMA's weights
            rates = cfg.training.ema_rates
            method.export(state.ema.models[rates[0]] if rates else state.net, paths.model, tuple(data.shape[1:]))
        io.write_json(paths.train_metrics, info)
        resume_file.unlink(missing_ok=True)
    return info


@contextlib.contextmanager
def stop_on_signals():
    """Turn SIGINT and SIGTERM into a flag the training loop checks at each step boundary."""
    received: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: received.append(signum)) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: bool(received)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# ---------------------------------------------------------------- generate


def load_trained(cfg: Config, paths: Paths = Paths()) -> tuple[torch.nn.Module, dict]:
    """The trained network (raw or the EMA chosen by ``eval.ema``) and the checkpoint body; for a
    method with several networks, the ``nn.ModuleDict`` of them all (the EMA covers each)."""
    ckpt = io.load_torch(paths.checkpoint)
    if not isinstance(ckpt, dict) or "state" not in ckpt or "config" not in ckpt:
        raise DataError(f"{paths.checkpoint}: not a genlib checkpoint (missing state or config)")
    saved, now = ckpt["config"], cfg.to_dict()
    stale = [k for k in TRAINING_SECTIONS + (cfg.method,) if saved.get(k) != now.get(k)]
    if stale:
        raise DataError(
            f"{paths.checkpoint}: trained with other params ({', '.join(stale)} differ); rerun training (dvc repro)"
        )
    net = build_net(cfg, tuple(ckpt["data_shape"]))
    weights = ckpt["state"]["net"] if cfg.eval.ema is None else ckpt["state"]["ema"][str(cfg.eval.ema)]
    net.load_state_dict(weights)
    return net.eval(), ckpt


def generate_stage(cfg: Config, paths: Paths = Paths()) -> dict:
    """Sample ``eval.nsamples`` points in batches of ``eval.batch_size``; batch ``i`` draws from its
    own seed stream, so the samples do not depend on how the batches are shared out.

    With ``run.nproc_per_node > 1`` the stage starts itself again under torchrun and process ``r``
    of ``N`` samples batches ``r, r + N, ...``; rank 0 gathers them in order and writes. The result
    equals one process's on the same kind of device.
    """
    device = resolve_device(cfg.run.device)
    check_precision(cfg.run.precision, device)
    if cfg.run.nproc_per_node > 1 and not distributed.launched():
        distributed.check_processes(cfg.run, device)
        launch(cfg, paths.root, "generate")
        return io.read_json(paths.samples / "info.json")
    with distributed.joined(cfg.run, device) as (world, device), denormals_flushed(device):
        return _generate(cfg, paths, world, device)


def _generate(cfg: Config, paths: Paths, world: distributed.World, device: torch.device) -> dict:
    net, ckpt = load_trained(cfg, paths)
    net = compiled(net.to(device), cfg.run.compile)
    method = build_method(cfg)
    options = cfg.eval.sample_options()
    shape = tuple(ckpt["data_shape"])
    progress = world.is_main and want_progress(cfg.run.progress)
    sizes = batch_sizes(cfg.eval.nsamples, cfg.eval.batch_size)
    start = time.perf_counter()
    mine = {}
    for i in range(world.rank, len(sizes), world.size):
        g = generator(cfg.seed, f"sample/{i}", device)
        with autocast(device, cfg.run.precision):
            mine[i] = method.sample(net, (sizes[i], *shape), cfg.eval.reverse_steps, g, options, progress).cpu()
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
    }
    if is_images(cfg):
        from genlib.image_steps import save_samples

        info.update(save_samples(samples, paths, _title(cfg, info)))
    else:
        samples = samples.numpy().astype(np.float32)
        io.save_array(paths.samples / "samples.npy", samples)
        test = io.load_array(paths.prepared / "test.npy")
        meta = io.read_json(paths.prepared / "meta.json")
        plots.samples_vs_data(paths.samples_plot, samples, test, meta.get("modes"), title=_title(cfg, info))
    io.write_json(paths.samples / "info.json", info)
    return info


def batch_sizes(n: int, batch: int) -> list[int]:
    """``n`` split into batches of ``batch``, the last one smaller if need be."""
    return [min(batch, n - start) for start in range(0, n, batch)]


def _title(cfg: Config, info: dict) -> str:
    if build_method(cfg).steps_itself:  # a VAE or GAN: eval.reverse_steps does not apply
        return f"{cfg.method} ({info['sampler']})"
    return f"{cfg.method} ({info['sampler']}, {info['reverse_steps']} steps)"


# ---------------------------------------------------------------- evaluate


def evaluate_stage(cfg: Config, paths: Paths = Paths()) -> dict:
    """Compare the samples with the held-out test set; write ``metrics/eval.json`` and the method's
    analysis figures. A method that scores the test set itself (``extra_metrics``: likelihoods)
    or draws its own figures (``analysis``) gets the trained networks, loaded once."""
    info = io.read_json(paths.samples / "info.json")
    method = build_method(cfg)
    needs_nets = hasattr(method, "extra_metrics") or hasattr(method, "analysis")
    nets = load_trained(cfg, paths)[0] if needs_nets else None
    if is_images(cfg):
        from genlib.image_steps import evaluate_images

        metrics = evaluate_images(cfg, paths, info, method, nets)
    else:
        metrics = _evaluate_points(cfg, paths, method, nets)
    metrics["sampling_time_s"] = info["sampling_time_s"]
    metrics = {k: (float(v) if isinstance(v, (int, float, np.floating)) else v) for k, v in metrics.items()}
    write_analysis(cfg, paths, method, nets, metrics)
    io.write_json(paths.metrics, metrics)
    return metrics


ANALYSIS_INDEX = "index.json"


def write_analysis(cfg: Config, paths: Paths, method, nets, metrics: dict) -> list[dict]:
    """The method's own analysis figures (a method with ``analysis``: the hierarchical VAE's KL per
    layer, reconstructions, traversals) in ``plots/analysis/``, listed with their captions in
    ``index.json`` for the report; for other methods the list is empty. ``analysis`` also gets
    the metrics just computed, so it draws what they hold instead of computing it again."""
    out = paths.analysis
    if out.exists():
        shutil.rmtree(out)  # figures of a previous method must not linger in the output
    out.mkdir(parents=True)
    figures: list[dict] = []
    if hasattr(method, "analysis"):
        test = load_points(paths.prepared / "test.npy")
        meta = io.read_json(paths.prepared / "meta.json")
        figures = [{"caption": c, "file": f} for c, f in
                   method.analysis(nets, test, generator(cfg.seed, "eval/analysis"), out, cfg.eval, meta, metrics)]
    io.write_json(out / ANALYSIS_INDEX, figures)
    return figures


def _evaluate_points(cfg: Config, paths: Paths, method, nets) -> dict:
    """Sample metrics against the held-out points, and the method's own (likelihoods) if it has them."""
    from genlib.metrics.sample_metrics import evaluate_samples

    samples = torch.from_numpy(io.load_array(paths.samples / "samples.npy"))
    test = load_points(paths.prepared / "test.npy")
    meta = io.read_json(paths.prepared / "meta.json")
    modes = torch.tensor(meta["modes"]) if meta.get("modes") else None
    weights = torch.tensor(meta["weights"]) if meta.get("weights") else None
    e = cfg.eval
    metrics = evaluate_samples(
        samples.flatten(1), test.flatten(1), generator(cfg.seed, "eval"), modes=modes, weights=weights,
        n_exact=e.n_exact, n_mmd=e.n_mmd, n_projections=e.n_projections, k=e.k,
    )
    metrics.pop("mode_weights_gen", None)
    if hasattr(method, "extra_metrics"):  # likelihood-based families score the test set themselves
        metrics.update(method.extra_metrics(nets, test.flatten(1), generator(cfg.seed, "eval/extra"), cfg.eval))
    return metrics
