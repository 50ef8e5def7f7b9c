"""Time embeddings: the network's only view of the diffusion time ``t`` in ``[0, 1]``."""
from __future__ import annotations

import math

import torch
from torch import nn


class SinusoidalEmbedding(nn.Module):
    """Transformer-style sinusoids of ``1000 t`` (Vaswani et al., 2017; Ho et al., 2020)."""

    def __init__(self, size: int, scale: float = 1000.0) -> None:
        super().__init__()
        half = size // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / max(half - 1, 1))
        self.register_buffer("freqs", freqs, persistent=False)
        self.scale, self.size = scale, size

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        args = self.scale * t.float()[:, None] * self.freqs[None]
        emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
        return nn.functional.pad(emb, (0, self.size - emb.shape[1]))


class LearnableEmbedding(nn.Module):
    """A small MLP of ``t`` itself, as BEM's ``learnable`` time embedding."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(1, size), nn.SiLU(), nn.Linear(size, size))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.net(t.float()[:, None])


def time_embedding(kind: str, size: int) -> nn.Module:
    return SinusoidalEmbedding(size) if kind == "sinusoidal" else LearnableEmbedding(size)
