"""A time-conditioned critic ``(x, t) -> logit`` for the particle models (Discriminator Flow).

The features of ``x`` (the point itself, or a strided convolutional encoder on images) are
concatenated with a sinusoidal embedding of ``t`` and mapped to one logit by a small MLP, as GPM
feeds the time embedding to its discriminator as an additional input (Franceschi et al., 2023).
"""
from __future__ import annotations

import torch
from torch import nn

from genlib.nets.conv import ConvEncoder
from genlib.nets.dense import dense
from genlib.nets.embeddings import SinusoidalEmbedding


class TimeCritic(nn.Module):
    def __init__(self, features: nn.Module, d_features: int, emb_size: int, units: int, layers: int) -> None:
        super().__init__()
        self.features = features
        self.embed = SinusoidalEmbedding(emb_size)
        self.head = dense(d_features + emb_size, 1, units, layers)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """One logit per row of ``x``, shape ``(B,)``; ``t`` in ``[0, 1)``, shape ``(B,)``."""
        return self.head(torch.cat([self.features(x), self.embed(t)], dim=1)).squeeze(1)


def point_critic(dim: int, emb_size: int, units: int, layers: int) -> TimeCritic:
    return TimeCritic(nn.Identity(), dim, emb_size, units, layers)


def image_critic(data_shape: tuple[int, ...], emb_size: int, channels: int, levels: int, key: str) -> TimeCritic:
    """A strided convolutional encoder (LeakyReLU 0.2, as the DCGAN discriminator) to ``4 channels``
    features, then a one-hidden-layer head over the features and the time embedding."""
    width = 4 * channels
    encoder = ConvEncoder(data_shape, width, channels, levels, key, act=lambda: nn.LeakyReLU(0.2))
    return TimeCritic(encoder, width, emb_size, width, 1)
