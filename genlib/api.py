"""genlib from Python: a trained model to sample from, and a params file as a typed config.

    import genlib
    model = genlib.load("data/model")         # or an experiment's folder, or a checkpoint file
    x = model.sample(1000, steps=50, seed=0)  # a tensor in the network's space ([-1, 1] for images)
    model.config                              # the params it was trained with
    cfg = genlib.load_config("params.yaml")   # checked as the stages check it

A sample equals what the ``generate`` stage writes for the same seed, steps, sampler and batch
size: batch ``i`` draws from the seed's stream ``sample/i`` there and here. This module sits on
the top layer with the command line; nothing in genlib imports it.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from genlib import io
from genlib.config import load as _load_params
from genlib.errors import DataError
from genlib.methods.base import SampleOptions
from genlib.params import build
from genlib.registry import METHODS, NETS
from genlib.seeding import generator

DEFAULT_EMA = "first"  # the first of training.ema_rates, as eval.ema is by default


def load_config(path: str | Path = "params.yaml", overrides: dict[str, Any] | None = None):
    """``params.yaml`` (or another params file) as the checked, typed config the stages use;
    ``overrides`` maps dotted keys to values, as ``dvc exp run -S`` does."""
    return _load_params(path, overrides)


def _checkpoint_file(where: str | Path) -> Path:
    where = Path(where)
    for candidate in (where, where / "checkpoint.pt", where / "data" / "model" / "checkpoint.pt"):
        if candidate.is_file():
            return candidate
    raise DataError(f"{where}: no checkpoint here (give data/model, an experiment's folder or a checkpoint.pt)")


@dataclasses.dataclass
class Trained:
    """A trained model: its method, its networks (the weights chosen at load), the shape of one
    item and the training params it was trained with (``config``)."""

    method: Any
    net: torch.nn.Module
    data_shape: tuple[int, ...]
    config: dict

    def sample(self, n: int, steps: int | None = None, sampler: str = "default", seed: int | None = None,
               eta: float = 0.0, batch_size: int = 15000, device: str = "cpu") -> torch.Tensor:
        """``n`` samples with ``steps`` reverse steps (the trained diffusion steps by default;
        ignored by the methods that sample in one pass) and ``sampler`` (``default`` or one of the
        method's); ``seed`` defaults to the run's."""
        seed = self.config["seed"] if seed is None else seed
        steps = steps if steps is not None else self.config.get(self.config["method"], {}).get("diffusion_steps", 1)
        options = SampleOptions(sampler, eta)
        self.method.check_sampling(options, steps)
        net = self.net.to(device)
        out = []
        for i, start in enumerate(range(0, n, batch_size)):
            size = min(batch_size, n - start)
            out.append(self.method.sample(net, (size, *self.data_shape), steps, generator(seed, f"sample/{i}", device), options).cpu())
        return torch.cat(out).float()


def load(where: str | Path = "data/model", ema: float | str | None = DEFAULT_EMA) -> Trained:
    """The model trained in ``where``: the weights of EMA rate ``ema`` (the first rate by default,
    ``None`` for the raw weights). A plugin method must be imported first."""
    file = _checkpoint_file(where)
    ckpt = io.load_torch(file)
    if not isinstance(ckpt, dict) or not {"state", "config", "data_shape"} <= set(ckpt):
        raise DataError(f"{file}: not a genlib checkpoint (missing state, config or data_shape)")
    cfg, shape = ckpt["config"], tuple(ckpt["data_shape"])
    name = cfg["method"]
    method_cls = METHODS.get(name)
    method = method_cls(build(method_cls.Params, cfg[name], f"{name}."))
    net = method.networks(shape)
    if net is None:
        model = dict(cfg["model"])
        net_cls = NETS.get(model.pop("net"))
        net = net_cls(shape, build(net_cls.Params, model, "model."))
    rates = cfg["training"]["ema_rates"]
    if ema == DEFAULT_EMA:
        ema = rates[0] if rates else None
    if ema is not None and str(float(ema)) not in ckpt["state"]["ema"]:
        raise DataError(f"{file}: no EMA of rate {ema}; it has {', '.join(map(str, rates)) or 'none'} (or ema=None: raw weights)")
    net.load_state_dict(ckpt["state"]["net"] if ema is None else ckpt["state"]["ema"][str(float(ema))])
    return Trained(method, net.eval(), shape, cfg)
