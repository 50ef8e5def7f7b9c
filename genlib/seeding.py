"""One seed in params, independent named streams derived from it (data, init, train, sampling)."""
from __future__ import annotations

import zlib

import torch


def stream_seed(seed: int, name: str) -> int:
    """A 63-bit seed for the stream ``name``; the same (seed, name) always gives the same stream."""
    return (seed * 1_000_003 + zlib.crc32(name.encode())) % (2**63 - 1)


def generator(seed: int, name: str, device: torch.device | str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(stream_seed(seed, name))

