"""A time-conditioned U-Net for images, in the style of Improved DDPM.

Architecture of Ho et al. (2020, App. B) as refined by Nichol & Dhariwal (2021, "Improved denoising
diffusion probabilistic models", Sec. 3 and their ``unet.py`` design): residual blocks with
GroupNorm and SiLU, the time embedding added to every block (optionally as a scale and shift of the
second normalisation, their "adaptive group normalization"), dropout before the block's last
convolution, multi-head self-attention at chosen feature-map sizes and in the middle, stride-2
convolutions to downsample, nearest-neighbour upsampling followed by a convolution, and skip
connections from every encoder stage to the decoder. The last convolution of each residual block,
of each attention block and of the output is zero-initialised, so every block starts as the
identity and the network's output starts at exactly zero.

The network knows nothing of noise: it maps ``(x, t)``, ``x`` of shape ``(B, C, H, W)`` and ``t``
of shape ``(B,)`` in ``[0, 1]``, to an output of ``x``'s shape.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from genlib.errors import ConfigError
from genlib.nets.embeddings import SinusoidalEmbedding
from genlib.nets.spec import UNetParams, UNetSpec


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(groups, channels)


def _zero(module: nn.Module) -> nn.Module:
    for param in module.parameters():
        nn.init.zeros_(param)
    return module


class ResBlock(nn.Module):
    """GroupNorm, SiLU, conv; time embedding in; GroupNorm, SiLU, dropout, zero conv; plus the skip."""

    def __init__(self, cin: int, cout: int, emb: int, p: UNetParams, groups: int) -> None:
        super().__init__()
        self.scale_shift = p.scale_shift
        self.in_layers = nn.Sequential(_norm(cin, groups), nn.SiLU(), nn.Conv2d(cin, cout, 3, padding=1))
        self.emb = nn.Sequential(nn.SiLU(), nn.Linear(emb, 2 * cout if p.scale_shift else cout))
        self.out_norm = _norm(cout, groups)
        self.out_layers = nn.Sequential(
            nn.SiLU(), nn.Dropout(p.dropout), _zero(nn.Conv2d(cout, cout, 3, padding=1))
        )
        self.skip = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.in_layers(x)
        e = self.emb(emb)[:, :, None, None]
        if self.scale_shift:
            scale, shift = e.chunk(2, dim=1)
            h = self.out_norm(h) * (1 + scale) + shift
        else:
            h = self.out_norm(h + e)
        return self.skip(x) + self.out_layers(h)


class AttentionBlock(nn.Module):
    """Multi-head self-attention over the H x W positions, residual, zero-initialised output."""

    def __init__(self, channels: int, heads: int, groups: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm = _norm(channels, groups)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = _zero(nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w).unbind(1)
        out = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.proj(out.transpose(-1, -2).reshape(b, c, h, w))


class Downsample(nn.Module):
    """Stride-2 3x3 convolution (Ho et al., 2020)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Nearest-neighbour doubling, then a 3x3 convolution (Ho et al., 2020)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Level(nn.Module):
    """One resolution of the encoder or decoder: a residual block, then attention if asked."""

    def __init__(self, cin: int, cout: int, emb: int, p: UNetParams, groups: int, attend: bool) -> None:
        super().__init__()
        self.res = ResBlock(cin, cout, emb, p, groups)
        self.attn = AttentionBlock(cout, p.num_heads, groups) if attend else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        return self.attn(self.res(x, emb))


class Middle(nn.Module):
    """The bottleneck: residual block, self-attention, residual block."""

    def __init__(self, channels: int, emb: int, p: UNetParams, groups: int) -> None:
        super().__init__()
        self.res1 = ResBlock(channels, channels, emb, p, groups)
        self.attn = AttentionBlock(channels, p.num_heads, groups)
        self.res2 = ResBlock(channels, channels, emb, p, groups)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        return self.res2(self.attn(self.res1(x, emb)), emb)


def _check_shape(data_shape: tuple[int, ...], p: UNetParams) -> tuple[int, ...]:
    """The feature-map heights, one per level; ConfigError if the image cannot be halved that often."""
    if len(data_shape) != 3:
        raise ConfigError(
            "model.net", "unet",
            f"a network for this data: unet needs an image dataset (C, H, W), got data shape "
            f"{tuple(data_shape)}; use mlp for 2D data",
        )
    _, h, w = data_shape
    factor = 2 ** (len(p.channel_mult) - 1)
    if h % factor or w % factor:
        raise ConfigError(
            "model.channel_mult", p.channel_mult,
            f"at most as many levels as {h}x{w} images can be halved through: "
            f"{len(p.channel_mult)} levels need sizes divisible by {factor}",
        )
    return tuple(h // 2**i for i in range(len(p.channel_mult)))


def _check_widths(p: UNetParams, sizes: tuple[int, ...], attention: tuple[int, ...]) -> int:
    """The GroupNorm group count, after checking groups, heads and attention sizes fit."""
    groups = min(p.groups, p.channels)
    if p.channels % groups:
        raise ConfigError("model.groups", p.groups, f"a divisor of model.channels = {p.channels} (or a number >= it)")
    missing = sorted(set(attention) - set(sizes), reverse=True)
    if missing:
        raise ConfigError(
            "model.attention_resolutions", p.attention_resolutions,
            f"feature-map sizes of this U-Net, among {', '.join(map(str, sizes))} ({missing} never occur)",
        )
    widths = {p.channels * m for m, s in zip(p.channel_mult, sizes) if s in attention}
    widths.add(p.channels * p.channel_mult[-1])  # the middle block always attends
    if any(c % p.num_heads for c in widths):
        listed = ", ".join(map(str, sorted(widths)))
        raise ConfigError("model.num_heads", p.num_heads, f"a divisor of every attended width ({listed})")
    return groups


class UNet(UNetSpec, nn.Module):
    """``(x, t) -> output`` of ``x``'s shape, for images ``x`` of shape ``(B, C, H, W)``."""

    def __init__(self, data_shape: tuple[int, ...], p: UNetParams = UNetParams()) -> None:
        super().__init__()
        sizes = _check_shape(data_shape, p)
        attention = p.attention_resolutions if p.attention_resolutions is not None else sizes[1:2]
        groups = _check_widths(p, sizes, attention)
        emb = p.time_emb_mult * p.channels
        self.time_embed = nn.Sequential(
            SinusoidalEmbedding(p.channels), nn.Linear(p.channels, emb), nn.SiLU(), nn.Linear(emb, emb)
        )
        self.inp = nn.Conv2d(data_shape[0], p.channels, 3, padding=1)

        self.down = nn.ModuleList()
        skips, ch = [p.channels], p.channels
        for level, (mult, size) in enumerate(zip(p.channel_mult, sizes)):
            for _ in range(p.num_res_blocks):
                self.down.append(Level(ch, p.channels * mult, emb, p, groups, size in attention))
                ch = p.channels * mult
                skips.append(ch)
            if level < len(sizes) - 1:
                self.down.append(Downsample(ch))
                skips.append(ch)

        self.middle = Middle(ch, emb, p, groups)

        self.up = nn.ModuleList()
        for level in reversed(range(len(sizes))):
            mult, size = p.channel_mult[level], sizes[level]
            for _ in range(p.num_res_blocks + 1):
                self.up.append(Level(ch + skips.pop(), p.channels * mult, emb, p, groups, size in attention))
                ch = p.channels * mult
            if level > 0:
                self.up.append(Upsample(ch))

        self.out = nn.Sequential(_norm(ch, groups), nn.SiLU(), _zero(nn.Conv2d(ch, data_shape[0], 3, padding=1)))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        emb = self.time_embed(t)
        h = self.inp(x)
        skips = [h]
        for block in self.down:
            h = block(h, emb) if isinstance(block, Level) else block(h)
            skips.append(h)
        h = self.middle(h, emb)
        for block in self.up:
            h = block(torch.cat([h, skips.pop()], dim=1), emb) if isinstance(block, Level) else block(h)
        return self.out(h)
