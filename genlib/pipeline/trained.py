"""Building the networks a run trains, and loading them back from its checkpoint."""
from __future__ import annotations

import torch

from genlib import io
from genlib.config import Config, build_method
from genlib.errors import DataError
from genlib.pipeline.keys import train_params
from genlib.pipeline.paths import Paths
from genlib.registry import NETS
from genlib.seeding import stream_seed


def build_net(cfg: Config, data_shape: tuple[int, ...]) -> torch.nn.Module:
    """The ``model:`` section's network, or the method's own networks (VAE, GAN) when it has them."""
    torch.manual_seed(stream_seed(cfg.seed, "init"))  # weight init and dropout draw from here
    own = build_method(cfg).networks(data_shape)
    return own if own is not None else NETS.get(cfg.model_net)(data_shape, cfg.model)


def load_trained(cfg: Config, paths: Paths = Paths()) -> tuple[torch.nn.Module, dict]:
    """The trained network (raw or the EMA chosen by ``eval.ema``) and the checkpoint body; for a
    method with several networks, the ``nn.ModuleDict`` of them all (the EMA covers each). A
    checkpoint trained with other params than ``cfg``'s training params is refused."""
    ckpt = io.load_torch(paths.checkpoint)
    if not isinstance(ckpt, dict) or "state" not in ckpt or "config" not in ckpt or "data_shape" not in ckpt:
        raise DataError(f"{paths.checkpoint}: not a genlib checkpoint (missing state, config or data_shape)")
    saved, now = ckpt["config"], train_params(cfg)
    stale = [k for k in now if saved.get(k) != now[k]] if isinstance(saved, dict) else ["all"]
    if stale:
        raise DataError(
            f"{paths.checkpoint}: trained with other params ({', '.join(stale)} differ); rerun training (dvc repro)"
        )
    net = build_net(cfg, tuple(ckpt["data_shape"]))
    weights = ckpt["state"]["net"] if cfg.eval.ema is None else ckpt["state"]["ema"][str(cfg.eval.ema)]
    net.load_state_dict(weights)
    return net.eval(), ckpt
