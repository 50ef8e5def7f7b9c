"""The hierarchical VAE's networks built from its checked block graph (:mod:`genlib.methods.hvae.graph`)
for a data shape, whose image resolutions are checked here."""
from __future__ import annotations

from torch import nn

from genlib.errors import ConfigError
from genlib.methods.hvae import blocks as B
from genlib.methods.hvae.graph import Graph
from genlib.nets.dense import dense


def build_blocks(graph: Graph, data_shape: tuple[int, ...]) -> nn.ModuleDict:
    """One module per block, keyed by its name, in the order the blocks run: MLPs for flat data
    ``(D,)``, convolutions for images ``(C, H, W)`` (whose resolutions are checked here)."""
    images = len(data_shape) == 3
    net = B.conv if images else dense
    res = _resolutions(graph, data_shape) if images else {}
    width = {b.name: b.width for b in graph.blocks}
    modules: dict[str, nn.Module] = {}
    for b in graph.blocks:
        if not images and (b.scale or 1) != 1:
            raise ConfigError(graph.key(b.name, "scale"), b.scale, "1 or no value: scale changes the resolution of images only")
        if b.type == "input":
            modules[b.name] = B.InputBlock(net, data_shape[0], b.width, b.depth)
        elif b.type == "encoder":
            modules[b.name] = B.EncoderBlock(net, width[b.input], b.width, b.depth, b.scale or 1)
        elif b.type == "top":
            spatial = (res[b.input],) * 2 if images else ()
            modules[b.name] = B.TopBlock(net, width[b.input], b.latent, b.width, b.depth, spatial)
        elif b.type == "gen":
            modules[b.name] = B.GenBlock(net, width[b.input], width[b.skip], b.latent, b.width, b.depth, b.scale or 1)
        elif b.type == "residual":
            modules[b.name] = B.ResidualBlock(net, b.width, width[b.skip], b.latent, b.depth, b.scale or 1)
        else:
            modules[b.name] = B.OutputBlock(net, width[b.input], data_shape[0], b.width, b.depth)
    return nn.ModuleDict(modules)


def _resolutions(graph: Graph, data_shape: tuple[int, ...]) -> dict[str, int]:
    """The side of each block's output on square images ``(C, H, H)``; a mismatch is an error."""
    side = data_shape[1]
    if data_shape[2] != side:
        raise ConfigError("data.dataset", f"images of shape {tuple(data_shape)}", "square images for hvae")
    res: dict[str, int] = {}
    for b in graph.blocks:
        scale = b.scale or 1
        if b.type == "input":
            res[b.name] = side
        elif b.type == "encoder":
            if res[b.input] % scale:
                raise ConfigError(graph.key(b.name, "scale"), scale, f"a divisor of its input's side {res[b.input]}")
            res[b.name] = res[b.input] // scale
        elif b.type in ("top", "output"):
            res[b.name] = res[b.input]
        else:
            res[b.name] = res[b.input] * scale
            if res[b.skip] != res[b.name]:
                raise ConfigError(graph.key(b.name, "skip"), b.skip, f"a bottom-up block at side {res[b.name]} (the state's after scale {scale}); {b.skip} is at {res[b.skip]}")
    if res[graph.output.name] != side:
        raise ConfigError(graph.key(graph.output.name, "input"), graph.output.input, f"a block at the data's side {side} (it is at {res[graph.output.name]}; upsample with scale)")
    return res
