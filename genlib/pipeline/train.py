"""The ``train`` stage: train ``cfg.method`` on the prepared training set.

It writes the checkpoint (``data/model/checkpoint.pt``, with the training params it was trained
with), ``config.json`` beside it, the curves (``plots/train``: the loss terms and, with
``training.eval_every``, the validation metrics) and ``metrics/train.json``. A
resume checkpoint of this exact training (:mod:`genlib.pipeline.resume`) is picked up and
training continues from it; SIGINT and SIGTERM save one before exiting. With
``training.init_from`` training starts where another run's checkpoint ended
(:mod:`genlib.pipeline.continued`), or fine-tunes the weights ``genlib migrate`` wrote there. With
``run.nproc_per_node > 1`` the stage starts itself again under torchrun
(:mod:`genlib.pipeline.worker`); each process then trains on its share of every batch
(:mod:`genlib.training.distributed`) and only rank 0 writes.
"""
from __future__ import annotations

import contextlib
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch

from genlib import io, sizes
from genlib.config import Config, build_method
from genlib.data.image_transforms import to_model
from genlib.errors import DataError
from genlib.pipeline import resume
from genlib.pipeline.continued import load_init, migrated, start_from
from genlib.pipeline.keys import train_params
from genlib.pipeline.paths import Paths
from genlib.pipeline.prepared import PREPARE, load_points
from genlib.pipeline.trained import build_net, load_teacher
from genlib.pipeline.worker import on_processes, serve
from genlib.progress import display, rate, say
from genlib.registry import DATASETS
from genlib.seeding import generator, stream_seed
from genlib.training import distributed
from genlib.training.batches import FromDisk, OnDevice, npy_layout
from genlib.training.callbacks import build_callbacks
from genlib.training.evaluation import ValidationEvaluation
from genlib.training.logger import Loggers, NullLogger
from genlib.training.trainer import new_state, train
from genlib.training.validation_metrics import IMAGE_METRICS, VALIDATION_PREFIX
from genlib.weights import with_digests


def train_stage(cfg: Config, paths: Paths = Paths()) -> dict:
    """Train, or continue an interrupted training; returns ``metrics/train.json``'s content."""
    return on_processes("train", cfg, paths, _train, paths.train_metrics)


def _train(cfg: Config, paths: Paths, world: distributed.World, device: torch.device) -> dict:
    data = training_set(paths.prepared / "train.npy", device, cfg.run.whole_set_mb)  # on the device, or read from disk
    shape = tuple(data.item_shape)
    method = build_method(cfg)
    if method.teacher_overrides() is not None:  # ScoreGAN's data score model, trained by train_teacher
        method.bind_teacher(load_teacher(cfg, paths, shape).to(device))
    n = data.n  # the door knows it only for points and data.max_train; checked again here
    sizes.check_batch(cfg.training.batch_size, n, f"{paths.prepared / 'train.npy'} holds {n}")
    init = load_init(cfg, shape) if cfg.training.init_from is not None else None
    origin = init["state"]["step"] if init is not None else 0  # a continued run's steps go on from its init's
    total = origin + sizes.check_steps(cfg.training.epochs, n, cfg.training.batch_size)

    def fresh_state():
        net = build_net(cfg, shape).to(device)
        state = new_state(net, cfg, total, generator(cfg.seed, "train", device), method)
        if init is not None:
            start_from(state, init, cfg, total)
        return state

    resume_file = paths.resume / f"train-{resume.training_key(cfg)}.pt"
    ident = resume.identity(cfg, paths)
    state, resumed = resume.restore(resume_file, ident, fresh_state, world.is_main)
    if resumed and world.is_main:
        print(f"resuming training from {resume_file} at step {state.step} of {total}", file=sys.stderr)
    elif origin and world.is_main:
        print(f"training continues from {cfg.training.init_from} at step {origin}, to step {total}", file=sys.stderr)
    elif init is not None and world.is_main:
        print(f"training fine-tunes the migrated weights of {cfg.training.init_from} with a fresh optimizer, "
              f"{total} steps from step 0", file=sys.stderr)
    if world.rank:  # each process draws its own dropout masks; rank 0 keeps one process's stream
        torch.manual_seed(stream_seed(cfg.seed, f"dropout/{world.rank}/{state.step}"))
    logger = Loggers(cfg.run.loggers, paths.train_log, cfg) if world.is_main else NullLogger()
    transform = DATASETS.get(cfg.data.dataset).input_transform(cfg.data)  # e.g. uint8 -> [-1, 1], per batch
    for step, row in state.history:  # the curve so far, as the interrupted run logged it
        logger.log(step, row)

    def save_resume(s) -> None:
        if world.is_main:
            with io.written_now():  # not an output: it must outlive a failed stage
                io.save_torch(resume_file, with_digests({"state": s.state_dict(), "identity": ident}))

    model = distributed.wrap(state.net, world, device, cfg.run.compile, ddp=not method.own_networks)
    first, start = state.step, time.perf_counter()
    with stop_on_signals() as stop, contextlib.closing(data):
        train(method, state, data, cfg, logger, on_checkpoint=save_resume,
              checkpoint_every=cfg.run.checkpoint_freq, progress=display(cfg.run.progress) if world.is_main else "off",
              should_stop=stop, world=world, model=model,
              transform=transform, callbacks=build_callbacks(cfg), evaluate=validation(cfg, paths, method, device))
    seconds = time.perf_counter() - start
    info = {"train_steps": state.step, "train_time_s": seconds, "nan_restores": state.restores, "final_loss": logger.last.get("loss"),
            "stopped_early": state.step < total}
    if world.is_main:
        logger.close()
        trained_with = train_params(cfg)
        # The validation metrics live in plots/train: without them the checkpoint is the same bytes
        # with the evaluation during training on or off, so generate and evaluate do not rerun.
        last = {k: v for k, v in state.state_dict().items() if k != "kept"}  # the kept weights: files of their own
        body = {"state": {**last, "history": _training_rows(state.history)}, "config": trained_with,
                "data_shape": list(shape)}
        io.save_torch(paths.checkpoint, with_digests(body))
        save_kept(state.kept, paths, trained_with, list(shape))
        io.write_json(paths.model / "config.json", trained_with)
        rates = cfg.training.ema_rates  # a self-contained model file (hvae.pt), the first EMA's weights
        method.export(state.ema.models[rates[0]] if rates else state.net, paths.model, shape)
        io.write_json(paths.train_metrics, info)
        io.remove(resume_file)  # once the outputs are in place
        say(cfg.run.progress, summary(state.step - first, seconds, info["final_loss"], first if resumed else 0))
    return info


def training_set(path: Path, device: torch.device, whole_mb: int) -> OnDevice | FromDisk:
    """The training set as the loop takes its batches (:mod:`genlib.training.batches`): uint8
    images of more than ``whole_mb`` MiB (``run.whole_set_mb``) are read from disk a batch at a
    time; a smaller set, and points, are placed on ``device`` whole."""
    if not path.is_file():
        raise DataError(f"{path}: file not found ({PREPARE})")
    dtype, shape, offset = npy_layout(path)
    if dtype != np.uint8 or path.stat().st_size - offset <= whole_mb * 2**20:
        return OnDevice(load_points(path).to(device))
    if len(shape) != 4 or shape[0] == 0:
        raise DataError(f"{path}: expected uint8 images (N, C, H, W), got {dtype} of shape {shape}; {PREPARE}")
    return FromDisk(path, device)


def save_kept(kept: dict, paths: Paths, trained_with: dict, data_shape: list) -> None:
    """``data/model/kept/<name>.pt`` for each of the weights kept (``step_<n>``, ``best``), stamped
    as the checkpoint is; the files of an earlier run that this one did not keep are removed."""
    folder = paths.model / "kept"
    for old in folder.glob("*.pt") if folder.is_dir() else ():
        if old.stem not in kept:
            io.remove(old)
    for name, weights in kept.items():
        io.save_torch(folder / f"{name}.pt", with_digests({"weights": weights, "config": trained_with, "data_shape": data_shape}))


def _training_rows(history: list) -> list:
    """The logged rows less the evaluation's ``val_*`` columns."""
    return [[step, {k: v for k, v in row.items() if not k.startswith(VALIDATION_PREFIX)}] for step, row in history]


def validation(cfg: Config, paths: Paths, method, device: torch.device) -> ValidationEvaluation | None:
    """The evaluation during training on ``val.npy`` (``training.eval_every``), or None when off.
    Images are scored as the likelihood metrics score them: in [-1, 1], dequantized uniformly from
    a stream of their own, never flipped."""
    if cfg.training.eval_every == 0:
        return None
    stored = load_points(paths.prepared / "val.npy")
    val = stored.to(device)
    if cfg.data_kind == "images":
        val = to_model(val, generator(cfg.seed, "train_eval/dequantize", device), "uniform", flip=False)
    if any(m in IMAGE_METRICS for m in cfg.training.eval_metrics) and not paths.classifier.is_file():
        raise DataError(f"{paths.classifier}: no evaluation classifier, which training.eval_metrics {', '.join(IMAGE_METRICS)} "
                        "score with (prepare_data trains it on a labelled image set); choose other metrics")
    modes = io.read_record(paths.prepared / "modes.json", ("modes",))["modes"]
    modes = None if modes is None else torch.tensor(modes, dtype=torch.float64)
    return ValidationEvaluation(method, val, cfg, device, modes, images=stored, classifier=paths.classifier)


def summary(steps: int, seconds: float, final_loss: float | None, resumed_at: int = 0) -> str:
    """``train: 3100 steps in 21.4 s (145 steps/s), final loss 0.191``."""
    resumed = f" (resumed at step {resumed_at})" if resumed_at else ""
    loss = f", final loss {final_loss:.4g}" if final_loss is not None else ""
    return f"train: {steps} steps{resumed} in {seconds:.1f} s ({rate(steps / max(seconds, 1e-9))} steps/s){loss}"


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


if __name__ == "__main__":  # a torchrun worker (genlib.pipeline.worker.launch)
    serve(train_stage)
