"""Models trained elsewhere brought into genlib: a hierarchical VAE's weights, mapped onto the
named blocks of a genlib graph and written as a genlib checkpoint (``genlib migrate``).

A migration adapter is a function ``(weights, graph) -> weights`` from the tensors of another
framework's state dict (any names) to genlib's, ``"<block>.<tensor>"`` as in
``nets.state_dict()`` of :func:`genlib.methods.hvae.build.build_blocks`. Adapters are registry
keys: a plugin adds one with ``@ADAPTERS.register("name")``. The built-in ``indexed`` reads what
:func:`export_weights` writes, each tensor named by its block's place in the graph, the way a
framework that numbers its layers names them. :func:`migrate_weights` checks every tensor the
graph needs before loading any: a missing name or a wrong shape is one line naming the block and
the tensor.

:func:`migrate_checkpoint` writes the model folder as the ``train`` stage does: ``checkpoint.pt``
(the weights as the raw and as every EMA's, stamped with the training params of the config),
``config.json`` and ``hvae.pt``. ``genlib.load`` samples from it, and ``generate`` / ``evaluate``
load it as a trained one. No stage imports this module: it sits above the pipeline, beside the
command line.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from genlib import io
from genlib.config import Config, build_method
from genlib.errors import ConfigError, DataError
from genlib.pipeline.keys import train_params
from genlib.registry import Registry
from genlib.weights import listing, with_digests

ADAPTERS: Registry = Registry("migration adapter")


def export_weights(method, nets: nn.ModuleDict) -> dict[str, torch.Tensor]:
    """A plain state dict with other names than genlib's: ``layer{i}/{tensor, '/' for '.'}``,
    ``i`` the block's place in the graph's run order (bottom-up, then top-down)."""
    index = {b.name: i for i, b in enumerate(method.graph.blocks)}
    out = {}
    for key, tensor in nets.state_dict().items():
        block, _, rest = key.partition(".")
        out[f"layer{index[block]}/{rest.replace('.', '/')}"] = tensor.detach().cpu().clone()
    return out


@ADAPTERS.register("indexed")
def indexed(weights: Mapping[str, torch.Tensor], graph) -> dict[str, torch.Tensor]:
    """The names :func:`export_weights` writes, back to genlib's; other names pass through
    unchanged, so :func:`migrate_weights` reports them as extra."""
    names = [b.name for b in graph.blocks]
    out = {}
    for key, tensor in weights.items():
        layer, _, rest = key.partition("/")
        i = layer.removeprefix("layer")
        if layer.startswith("layer") and i.isdigit() and int(i) < len(names):
            out[f"{names[int(i)]}.{rest.replace('/', '.')}"] = tensor
        else:
            out[key] = tensor
    return out


def migrate_weights(method, data_shape: tuple[int, ...], weights: Mapping[str, torch.Tensor], adapter: str,
                    source: str) -> nn.ModuleDict:
    """The graph's networks for ``data_shape`` holding ``weights`` (from ``source``, for errors)
    as adapter ``adapter`` maps them onto the blocks' names."""
    if not isinstance(weights, Mapping) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise DataError(f"{source}: not a state dict (a mapping of names to tensors)")
    nets = method.networks(tuple(data_shape))
    mapped = ADAPTERS.get(adapter)(weights, method.graph)
    via = f"adapter {adapter!r}"
    for key, want in nets.state_dict().items():
        block, _, tensor = key.partition(".")
        if key not in mapped:
            raise DataError(f"{source}: block {block} tensor {tensor}: missing (no weight maps onto it through {via})")
        got = mapped[key]
        if tuple(got.shape) != tuple(want.shape):
            raise DataError(f"{source}: block {block} tensor {tensor}: shape {tuple(got.shape)} through {via}, "
                            f"the graph needs {tuple(want.shape)}")
    extra = sorted(set(mapped) - set(nets.state_dict()))
    if extra:
        raise DataError(f"{source}: {listing(extra)} through {via} match no block's tensor of this graph")
    nets.load_state_dict({k: v.to(nets.state_dict()[k].dtype) for k, v in mapped.items()})
    return nets


def migrate_checkpoint(cfg: Config, weights_file: str | Path, adapter: str, data_shape: tuple[int, ...],
                       out: str | Path) -> Path:
    """Write ``out/checkpoint.pt`` (with ``config.json`` and ``hvae.pt``) from ``weights_file``;
    returns the checkpoint's path."""
    if cfg.method != "hvae":
        raise ConfigError("method", cfg.method, "hvae: migration adapters map weights onto an hvae block graph")
    method = build_method(cfg)
    weights = io.load_torch(weights_file, "state dict to migrate", "")
    nets = migrate_weights(method, data_shape, weights, adapter, str(weights_file))
    state = nets.state_dict()
    trained_with = train_params(cfg)
    body = {"state": {"net": state, "ema": {str(rate): state for rate in cfg.training.ema_rates}, "step": 0, "history": []},
            "config": trained_with, "data_shape": list(data_shape), "migrated_from": {"file": str(weights_file), "adapter": adapter}}
    folder = Path(out)
    io.save_torch(folder / "checkpoint.pt", with_digests(body))
    io.write_json(folder / "config.json", trained_with)
    method.export(nets, folder, tuple(data_shape))
    return folder / "checkpoint.pt"
