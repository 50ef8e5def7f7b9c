"""Convolutional encoders and decoders for the non-diffusion families on images (VAE, GAN).

Both work at ``levels + 1`` resolutions: the image ``H x W`` and ``levels`` halvings of it, so
``H`` and ``W`` must be divisible by ``2**levels`` (28 and 32 both take 2 levels: 7x7 and 8x8
at the bottom). A halving is a 4x4 convolution of stride 2 and padding 1, a doubling its
transpose, both exact on even sizes (Radford, Metz & Chintala, DCGAN, ICLR 2016: strided
convolutions instead of pooling, no hidden fully connected layers beyond the projection of the
latent). The width is ``channels`` at the first halving and doubles at each further one.

The decoder (a generator) maps latents of any leading shape ``(..., d_in)`` to ``(..., C', H, W)``,
so the VAE's importance samples ``(K, B, d)`` pass in one call.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from genlib.nets.sizes import bottom_size


def widths(channels: int, levels: int) -> list[int]:
    """The width after each halving, from the finest to the coarsest."""
    return [channels * 2**i for i in range(levels)]


class ConvEncoder(nn.Module):
    """``(B, C, H, W) -> (B, d_out)``: ``levels`` strided convolutions, then one linear layer.
    ``spectral`` wraps every layer in spectral normalisation (Miyato et al., ICLR 2018)."""

    def __init__(self, data_shape: tuple[int, ...], d_out: int, channels: int, levels: int, key: str,
                 act: Callable[[], nn.Module] = nn.SiLU, spectral: bool = False) -> None:
        super().__init__()
        h, w = bottom_size(data_shape, levels, key)
        wrap = spectral_norm if spectral else (lambda m: m)
        layers: list[nn.Module] = []
        c_in = data_shape[0]
        for c_out in widths(channels, levels):
            layers += [wrap(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1)), act()]
            c_in = c_out
        self.body = nn.Sequential(*layers, nn.Flatten(), wrap(nn.Linear(c_in * h * w, d_out)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class ConvDecoder(nn.Module):
    """``(..., d_in) -> (..., c_out, H, W)``: a linear projection to the coarsest map, then
    ``levels`` transposed convolutions, the last straight to ``c_out`` channels. ``batch_norm``
    normalises every hidden map (DCGAN's generator) with the statistics of the batch at hand, in
    training and in sampling alike: no running statistics, so an EMA of the weights is never paired
    with statistics gathered under other weights (and a draw depends on the batch it is drawn in).
    ``out_act`` ends it (DCGAN: tanh)."""

    def __init__(self, d_in: int, data_shape: tuple[int, ...], c_out: int, channels: int, levels: int, key: str,
                 act: Callable[[], nn.Module] = nn.SiLU, batch_norm: bool = False,
                 out_act: Callable[[], nn.Module] = nn.Identity) -> None:
        super().__init__()
        h, w = bottom_size(data_shape, levels, key)
        ws = widths(channels, levels)[::-1]
        norm = (lambda c: nn.BatchNorm2d(c, track_running_stats=False)) if batch_norm else (lambda c: nn.Identity())
        self.project = nn.Sequential(nn.Linear(d_in, ws[0] * h * w), nn.Unflatten(1, (ws[0], h, w)), norm(ws[0]), act())
        layers: list[nn.Module] = []
        for c_in, c_next in zip(ws, ws[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_next, 4, stride=2, padding=1), norm(c_next), act()]
        layers += [nn.ConvTranspose2d(ws[-1], c_out, 4, stride=2, padding=1), out_act()]
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        lead = z.shape[:-1]
        out = self.body(self.project(z.reshape(-1, z.shape[-1])))
        return out.reshape(*lead, *out.shape[1:])


def dcgan_init(module: nn.Module) -> None:
    """Weights from N(0, 0.02) and zero biases; BatchNorm scales from N(1, 0.02) (DCGAN, Sec. 4)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            spectral = parametrize.is_parametrized(m, "weight")  # the raw weight under spectral norm
            nn.init.normal_(m.parametrizations.weight.original if spectral else m.weight, 0.0, 0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
