"""Building the networks a run trains, and loading them back from its checkpoint."""
from __future__ import annotations

from pathlib import Path

import torch

from genlib import io
from genlib.config import Config, build_method, teacher_config
from genlib.errors import DataError
from genlib.pipeline.keys import train_params
from genlib.pipeline.paths import Paths
from genlib.registry import NETS
from genlib.seeding import stream_seed
from genlib.weights import digest_problem, load_into

REMAKE = "rerun training to remake it (dvc repro)"


def build_net(cfg: Config, data_shape: tuple[int, ...]) -> torch.nn.Module:
    """The ``model:`` section's network, or the method's own networks (VAE, GAN) when it has them."""
    torch.manual_seed(stream_seed(cfg.seed, "init"))  # weight init and dropout draw from here
    own = build_method(cfg).networks(data_shape)
    return own if own is not None else NETS.get(cfg.model_net)(data_shape, cfg.model)


def load_trained(cfg: Config, paths: Paths = Paths(), checkpoint: str | int | None = None) -> tuple[torch.nn.Module, dict]:
    """The trained network (raw or the EMA chosen by ``eval.ema``) at ``checkpoint`` (by default
    ``eval.checkpoint``: the last step's, ``best`` or a kept step's, ``data/model/kept``) and the
    checkpoint body; for a method with several networks, the ``nn.ModuleDict`` of them all (the
    EMA covers each). A checkpoint trained with other params than ``cfg``'s training params is
    refused, and so is one whose structure or tensors do not fit the network ``cfg`` builds."""
    file = paths.checkpoint
    ckpt = io.load_torch(file, "checkpoint", REMAKE)
    problem = _malformed(ckpt, cfg)
    if problem:
        raise DataError(f"{file}: {problem}; {REMAKE}")
    saved, now = ckpt["config"], train_params(cfg)
    stale = [k for k in now if saved.get(k) != now[k]]
    if stale:
        raise DataError(f"{file}: trained with other params ({', '.join(stale)} differ); rerun training (dvc repro)")
    net = build_net(cfg, tuple(ckpt["data_shape"]))
    state, where = ckpt["state"], file
    which = cfg.eval.checkpoint if checkpoint is None else checkpoint
    if which != "last":  # the checkpoint checked the params and shape; the kept file has the weights
        state, where = _kept(cfg, paths, which), kept_file(paths, which)
    if cfg.eval.ema is None:
        load_into(net, state["net"], where, "the raw weights ('net')", REMAKE)
    else:
        load_into(net, state["ema"][str(cfg.eval.ema)], where, f"the EMA weights of rate {cfg.eval.ema}", REMAKE)
    problem = digest_problem(ckpt)  # last: the checks above name what is wrong more plainly
    if problem:
        raise DataError(f"{file}: {problem}; {REMAKE}")
    return net.eval(), ckpt


def kept_file(paths: Paths, which: str | int) -> Path:
    """The file of the weights kept as ``which`` (``best`` or a step) in ``data/model/kept``."""
    return paths.model / "kept" / ("best.pt" if which == "best" else f"step_{which}.pt")


def _kept(cfg: Config, paths: Paths, which: str | int) -> dict:
    """The weights kept as ``which`` (``{"step", "net", "ema"}``), checked: there, trained with
    ``cfg``'s training params, holding what ``eval.ema`` asks for, its tensors as written."""
    file = kept_file(paths, which)
    if not file.is_file():
        raise DataError(f"{file}: no weights kept as {which} (eval.checkpoint; training.keep_every and training.select "
                        f"say what training keeps); rerun training (dvc repro)")
    body = io.load_torch(file, "kept weights", REMAKE)
    weights = body.get("weights") if isinstance(body, dict) else None
    if not isinstance(weights, dict) or not isinstance(weights.get("ema"), dict) or "net" not in weights:
        raise DataError(f"{file}: not the kept weights genlib writes (no weights with net and ema); {REMAKE}")
    if body.get("config") != train_params(cfg):
        raise DataError(f"{file}: trained with other params than the checkpoint's; {REMAKE}")
    if cfg.eval.ema is not None and str(cfg.eval.ema) not in weights["ema"]:
        raise DataError(f"{file}: holds no EMA weights of rate {cfg.eval.ema} (eval.ema); {REMAKE}")
    problem = digest_problem(body)
    if problem:
        raise DataError(f"{file}: {problem}; {REMAKE}")
    return weights


def _malformed(ckpt, cfg: Config) -> str:
    """What is missing or of the wrong type in a checkpoint body, for the weights ``cfg`` asks for."""
    if not isinstance(ckpt, dict):
        return f"not a genlib checkpoint (a {type(ckpt).__name__}, not a mapping)"
    missing = [k for k in ("state", "config", "data_shape") if k not in ckpt]
    if missing:
        return f"not a genlib checkpoint (no {', '.join(missing)}; expected state, config and data_shape)"
    if not isinstance(ckpt["config"], dict):
        return f"its config is {type(ckpt['config']).__name__}, not the mapping of training params"
    shape = ckpt["data_shape"]
    if not isinstance(shape, list) or not shape or not all(type(d) is int and d > 0 for d in shape):
        return f"its data_shape {shape!r} is not a list of positive integers"
    state = ckpt["state"]
    if not isinstance(state, dict):
        return f"its state is {type(state).__name__}, not a mapping"
    if cfg.eval.ema is None:
        return "" if "net" in state else "its state holds no raw weights ('net'), which eval.ema: null asks for"
    ema = state.get("ema")
    if not isinstance(ema, dict) or str(cfg.eval.ema) not in ema:
        held = ", ".join(map(str, ema)) if isinstance(ema, dict) and ema else "none"
        return f"its state holds no EMA weights of rate {cfg.eval.ema} (eval.ema; it holds {held})"
    return ""


def load_teacher(cfg: Config, paths: Paths, data_shape: tuple[int, ...]) -> torch.nn.Module:
    """The trained teacher of ``cfg.method`` (``data/teacher``, from the ``train_teacher`` stage),
    checked: trained with the teacher's params as they are now, on data of ``data_shape``."""
    teacher, where = teacher_config(cfg), paths.for_teacher()
    if not where.checkpoint.is_file():
        raise DataError(f"{where.checkpoint}: no teacher model, which method {cfg.method} learns from; "
                        "run `dvc repro` (its train_teacher stage trains it)")
    body = io.load_torch(where.checkpoint, "checkpoint", REMAKE)
    shape = body.get("data_shape") if isinstance(body, dict) else None
    if isinstance(shape, list) and shape != list(data_shape):  # before its weights meet a network of another shape
        raise DataError(f"{where.checkpoint}: a teacher of data shape {shape}, not this data's {list(data_shape)}; "
                        "rerun its training (dvc repro)")
    return load_trained(teacher, where, "last")[0]  # the teacher's training keeps no other weights
