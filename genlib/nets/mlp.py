"""A time-conditioned residual MLP for low-dimensional data."""
from __future__ import annotations

import torch
from torch import nn

from genlib.nets.embeddings import time_embedding
from genlib.nets.spec import MLPParams, MLPSpec


class Block(nn.Module):
    def __init__(self, units: int, emb: int, p: MLPParams) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(units) if p.layer_norm else nn.Identity()
        self.time = nn.Linear(emb, units)
        self.body = nn.Sequential(
            nn.SiLU(), nn.Linear(units, units), nn.SiLU(), nn.Dropout(p.dropout), nn.Linear(units, units)
        )
        self.residual = p.skip_connection

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        out = self.body(self.norm(h) + self.time(emb))
        return h + out if self.residual else out


class MLP(MLPSpec, nn.Module):
    """``(x, t) -> output`` of ``x``'s shape; ``x`` is ``(B, D)``, ``t`` is ``(B,)`` in ``[0, 1]``."""

    def __init__(self, data_shape: tuple[int, ...], p: MLPParams = MLPParams()) -> None:
        super().__init__()
        if len(data_shape) != 1:
            raise ValueError(f"the mlp network takes flat data (D,), got shape {data_shape}")
        dim = data_shape[0]
        self.embed = time_embedding(p.time_emb, p.time_emb_size)
        self.inp = nn.Linear(dim, p.nunits)
        self.blocks = nn.ModuleList(Block(p.nunits, p.time_emb_size, p) for _ in range(p.nblocks))
        # No normalisation in the head: with heavy-tailed noise the ideal output grows linearly with
        # |x_t| (eps ~ x_t / bar_sigma_t far out), which a final LayerNorm cannot express.
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(p.nunits, dim))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        emb = self.embed(t)
        h = self.inp(x)
        for block in self.blocks:
            h = block(h, emb)
        return self.out(h)
