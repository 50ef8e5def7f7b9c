"""Weights of a hierarchical VAE trained elsewhere, mapped onto the named blocks of a genlib graph.

A migration adapter is a function ``(weights, graph) -> weights`` from the tensors of another
framework's state dict (any names) to genlib's, ``"<block>.<tensor>"`` as in
``nets.state_dict()`` of :func:`genlib.methods.hvae.build.build_blocks`. Adapters are registry
keys: a plugin adds one with ``@ADAPTERS.register("name")``. The built-in ``indexed`` reads what
:func:`export_weights` writes, each tensor named by its block's place in the graph, the way a
framework that numbers its layers names them. :func:`migrate_weights` checks every tensor the
graph needs before loading any: a missing name or a wrong shape is one line naming the block and
the tensor.
"""
from __future__ import annotations

from typing import Callable, Mapping

import torch
from torch import nn

from genlib.errors import DataError
from genlib.registry import Registry
from genlib.weights import listing

Adapter = Callable[[Mapping[str, torch.Tensor], object], dict[str, torch.Tensor]]
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
