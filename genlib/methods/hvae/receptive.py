"""What drives each latent dimension of a hierarchical VAE: its receptive field under white noise
and the test inputs that excite it most.

White-noise analysis is the spike-triggered average of neurophysiology (Chichilnisky, Network
12, 2001): inputs of independent noise go through the encoder, and the correlation of each
latent dimension's posterior mean with each input dimension is its linear receptive field. On
images a latent channel is read at the centre of its grid, so its field is an image.
"""
from __future__ import annotations

import torch

from genlib.methods.hvae.probes import posterior_means

N_NOISE = 2000  # white-noise inputs
MAX_UNITS = 8  # latent dimensions (image channels) shown per layer


def units(z: torch.Tensor) -> list[tuple[int, int]]:
    """Per shown dimension of a layer's means ``(N, ...)``: (dimension or channel, flat index),
    an image channel at the centre of its grid."""
    if z.dim() == 4:
        _, c, h, w = z.shape
        return [(k, k * h * w + (h // 2) * w + w // 2) for k in range(min(c, MAX_UNITS))]
    return [(k, k) for k in range(min(z.shape[1], MAX_UNITS))]


def white_noise(like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``N_NOISE`` inputs of independent noise shaped as ``like``'s items: images uniform on
    [-1, 1] per pixel, points Gaussian with the per-dimension mean and spread of ``like``."""
    shape = (N_NOISE, *like.shape[1:])
    if like.dim() == 4:
        return torch.rand(shape, generator=generator, device=like.device) * 2 - 1
    eps = torch.randn(shape, generator=generator, device=like.device)
    return like.mean(0) + like.std(0) * eps


def receptive_fields(method, nets, like: torch.Tensor, generator: torch.Generator) -> list[torch.Tensor]:
    """Per layer, ``(U, *item shape)``: the correlation over white noise of each shown
    dimension's posterior mean (:func:`units`) with each input dimension."""
    noise = white_noise(like, generator)
    x = noise.flatten(1).cpu().double()
    x = (x - x.mean(0)) / x.std(0).clamp(min=1e-12)
    fields = []
    for z in posterior_means(method, nets, noise, generator):
        m = z.flatten(1)[:, [i for _, i in units(z)]].double()
        m = (m - m.mean(0)) / m.std(0).clamp(min=1e-12)  # a dead dimension correlates with nothing
        fields.append((m.T @ x / (x.shape[0] - 1)).float().view(m.shape[1], *noise.shape[1:]))
    return fields


def most_exciting(z: torch.Tensor, k: int) -> list[torch.Tensor]:
    """Per shown dimension of a layer's test means ``(N, ...)``, the indices of the ``k`` test
    items with the largest posterior mean, largest first."""
    flat = z.flatten(1)
    return [flat[:, i].topk(min(k, flat.shape[0])).indices for _, i in units(z)]
