"""The hierarchical VAE's networks built from its checked block graph (:mod:`genlib.methods.hvae.graph`)
for a data shape, whose image resolutions are checked here."""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from genlib.errors import ConfigError
from genlib.methods.hvae import blocks as B
from genlib.methods.hvae.custom import CustomBlock
from genlib.methods.hvae.graph import BlockSpec, Graph, head, inferred, role
from genlib.methods.likelihoods import likelihood
from genlib.registry import HVAE_BLOCKS, HVAE_NETS


@dataclass(frozen=True)
class BuildContext:
    """What a block's build reads besides its own spec (a plugin's block type gets the same)."""

    net: B.Net  # the block's networks: (in, out, width, depth) -> module, by hvae.blocks[i].net
    widths: dict[str, int]  # every block's output width (channels on images), by name
    data_shape: tuple[int, ...]
    side: int | None  # images: the side of the block's output; points: None
    key: str  # how errors name the block, hvae.blocks[i]


def build_blocks(graph: Graph, data_shape: tuple[int, ...], lik: str = "gaussian") -> nn.ModuleDict:
    """One module per block, keyed by its name, in the order the blocks run: MLPs for flat data
    ``(D,)``, convolutions for images ``(C, H, W)`` (whose resolutions are checked here); the
    output block's likelihood is ``lik`` (``hvae.likelihood``)."""
    images = len(data_shape) == 3
    res = _resolutions(graph, data_shape) if images else {}
    widths = {b.name: b.width for b in graph.blocks}
    modules: dict[str, nn.Module] = {}
    for b in graph.blocks:
        key = graph.key(b.name, "")[:-1]
        if not images and (b.scale or 1) != 1:
            raise ConfigError(f"{key}.scale", b.scale, "1 or no value: scale changes the resolution of images only")
        for name, value in (("pool", b.pool), ("unpool", b.unpool)):
            if value == "dense" and res.get(b.name if name == "pool" else b.input) != 1:
                at = "its output" if name == "pool" else "its input"
                raise ConfigError(f"{key}.{name}", "dense", f"{'avg' if name == 'pool' else 'nearest'} or no value: dense maps a whole image-side map to or from 1x1 ({at} must be at side 1)")
        net = HVAE_NETS.get(b.net or ("conv" if images else "dense"))
        ctx = BuildContext(net, widths, tuple(data_shape), res.get(b.name), key)
        modules[b.name] = _custom(b, ctx) if b.type in HVAE_BLOCKS else _builtin(b, ctx, lik)
    return nn.ModuleDict(modules)


def _custom(b: BlockSpec, ctx: BuildContext) -> nn.Module:
    """A plugin's block, built by its registered :class:`~genlib.methods.hvae.custom.CustomBlock`."""
    cls = HVAE_BLOCKS.get(b.type)
    if not (isinstance(cls, type) and issubclass(cls, CustomBlock)):
        raise ConfigError(f"{ctx.key}.type", b.type, "a block type registered as a subclass of genlib.methods.hvae.custom.CustomBlock")
    return cls.build(b, ctx)


def _builtin(b: BlockSpec, ctx: BuildContext, lik: str) -> nn.Module:
    width, net, scale, dist = ctx.widths, ctx.net, b.scale or 1, b.dist or "gaussian"
    spatial = (ctx.side,) * 2 if ctx.side is not None else ()
    concat = b.concat_posterior is not False
    if b.type == "input":
        return B.InputBlock(net, ctx.data_shape[0], b.width, b.depth, b.transform or "identity")
    if b.type == "encoder":
        return B.EncoderBlock(net, width[b.input], b.width, b.depth, scale, b.transform or "identity",
                              ctx.side * scale if b.pool == "dense" else None)
    if b.type == "dual":
        return B.DualBlock(net, width[b.input], width[b.input2], b.width, b.depth, b.merge or "concat")
    if b.type in ("top", "top_simple"):
        feature = width[b.input] if b.type == "top" else None
        return B.TopBlock(net, feature, b.latent, b.width, b.depth, spatial, dist)
    if b.type in ("gen", "gen_prior"):
        feature = width[b.skip] if b.type == "gen" else None
        return B.GenBlock(net, width[b.input], feature, b.latent, b.width, b.depth, scale, dist, concat)
    if b.type == "residual":
        return B.ResidualBlock(net, b.width, width[b.skip], b.latent, b.depth, scale, dist, concat)
    if b.type == "simple":
        return B.SimpleBlock(net, width[b.input], b.width, b.depth, scale, spatial, b.unpool == "dense")
    return B.OutputBlock(net, width[b.input], ctx.data_shape[0], b.width, b.depth, likelihood(lik, len(ctx.data_shape)))


def _resolutions(graph: Graph, data_shape: tuple[int, ...]) -> dict[str, int]:
    """The side of each block's output on square images ``(C, H, H)``; a mismatch is an error."""
    side = data_shape[1]
    if data_shape[2] != side:
        raise ConfigError("data.dataset", f"images of shape {tuple(data_shape)}", "square images for hvae")
    res: dict[str, int] = {}
    for b in graph.blocks:
        scale, kind = b.scale or 1, role(b.type)
        if b.type == "input":
            res[b.name] = side
        elif head(b.type) and b.input is None:  # top_simple, or a plugin's top type without a posterior
            if b.side is None:
                raise ConfigError(graph.key(b.name, "side"), None, "the top latent's side on images (e.g. 1 or 7)")
            res[b.name] = b.side
        elif head(b.type) or b.type == "output":
            res[b.name] = res[b.input]
        elif kind == "bottom_up":
            if res[b.input] % scale:
                raise ConfigError(graph.key(b.name, "scale"), scale, f"a divisor of its input's side {res[b.input]}")
            res[b.name] = res[b.input] // scale
            if b.input2 is not None and res[b.input2] != res[b.input]:
                raise ConfigError(graph.key(b.name, "input2"), b.input2, f"a block at the side {res[b.input]} of {b.input}; "
                                                                          f"{b.input2} is at {res[b.input2]}")
        else:
            res[b.name] = res[b.input] * scale
            if inferred(b.type) and res[b.skip] != res[b.name]:
                raise ConfigError(graph.key(b.name, "skip"), b.skip, f"a bottom-up block at side {res[b.name]} (the state's after scale {scale}); {b.skip} is at {res[b.skip]}")
    if res[graph.output.name] != side:
        raise ConfigError(graph.key(graph.output.name, "input"), graph.output.input, f"a block at the data's side {side} (it is at {res[graph.output.name]}; upsample with scale)")
    return res
