"""A user's own hvae block type, written in a plugin module and registered by name.

A plugin module (named under ``plugins:`` in params.yaml) subclasses :class:`CustomBlock` and
registers it; a graph then uses its name as a block's ``type``::

    from genlib.methods.hvae.custom import CustomBlock
    from genlib.registry import HVAE_BLOCKS

    @HVAE_BLOCKS.register("gated")
    class Gated(CustomBlock):
        role = "bottom_up"

        @classmethod
        def build(cls, spec, ctx):
            return cls(ctx.net(ctx.widths[spec.input], spec.width, spec.width, spec.depth))

        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, h):
            return h * torch.sigmoid(self.net(h))

``role`` says where the block sits and which calls it answers, as the built-in blocks do:

- ``bottom_up``: ``forward(h) -> h'`` on the feature of ``input`` (``scale`` pools on images);
- ``deterministic``: a top-down block, ``forward(state) -> state'`` (``scale`` upsamples);
- ``latent``: a top-down latent layer, ``prior(state, n) -> (dist, extra)``,
  ``posterior(state, h) -> dist`` (when ``inferred``; ``h`` is the feature of ``skip``, after
  its ``condition_transform``) and
  ``next_state(state, z, extra) -> state'``, ``dist`` a :class:`~genlib.methods.hvae.blocks.Gaussian`
  or :class:`~genlib.methods.hvae.blocks.Laplace`.

A ``latent`` type with ``top = True`` is the graph's top block, in place of ``top`` or
``top_simple``: ``prior(None, n)``, ``posterior(None, h)`` on the feature of its bottom-up
``input`` (only when ``inferred``, and without ``input`` otherwise; on images ``side`` then sets
its resolution) and ``next_state(None, z, extra)``, the first state.

Its keys are those of its role (:data:`genlib.methods.hvae.graph.CUSTOM_KEYS`), its own settings
under ``config:`` (a mapping handed to ``build`` in ``spec.config``); a model file records the type
and its config with the graph and the module it came from, and loading it without that module
imported fails with one line naming it (:mod:`genlib.methods.hvae.serialise`).
"""
from __future__ import annotations

from typing import ClassVar

from torch import nn


class CustomBlock(nn.Module):
    """Base of a plugin's block type: its place in the graph and how it is built."""

    role: ClassVar[str] = "bottom_up"  # bottom_up | deterministic | latent
    inferred: ClassVar[bool] = True  # latent: has a posterior reading the feature of skip
    top: ClassVar[bool] = False  # latent: the top of the chain (in place of top or top_simple): no state above it

    @classmethod
    def build(cls, spec, ctx) -> nn.Module:
        """The module for ``spec`` (a :class:`~genlib.methods.hvae.graph.BlockSpec`), given ``ctx``
        (:class:`~genlib.methods.hvae.build.BuildContext`: the block networks, the widths of the
        other blocks, the data shape and the side of this block's output on images)."""
        raise NotImplementedError
