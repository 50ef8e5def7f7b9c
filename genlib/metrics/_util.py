"""Helpers shared by the sample metrics: input checks, seeded subsampling, chunked distances.

All metrics compute in float64 internally: heavy-tailed samples reach magnitudes whose squares
overflow float32, and the exact-distance path keeps the distance of a point to itself at exactly 0.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

# Upper bound on the number of entries of one distance block (float64: 32 MiB). Read at call time,
# so tests can shrink it to force several chunks.
CHUNK_ELEMS = 1 << 22


def as_points(x: torch.Tensor, name: str = "x") -> torch.Tensor:
    """Check that ``x`` is an (N, d) tensor and return it detached, on CPU, as float64."""
    if not isinstance(x, torch.Tensor) or x.dim() != 2:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a 2D (N, d) torch.Tensor, got {shape}")
    return x.detach().to(device="cpu", dtype=torch.float64)


def as_pair(gen: torch.Tensor, ref: torch.Tensor, min_rows: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Check two point sets (same dimension, at least ``min_rows`` rows each); return them as float64."""
    gen, ref = as_points(gen, "gen"), as_points(ref, "ref")
    if gen.shape[1] != ref.shape[1]:
        raise ValueError(f"gen has dimension {gen.shape[1]} but ref has {ref.shape[1]}")
    for name, x in (("gen", gen), ("ref", ref)):
        if x.shape[0] < min_rows:
            raise ValueError(f"{name} has {x.shape[0]} rows; this metric needs at least {min_rows}")
    return gen, ref


def to_numpy(x: torch.Tensor) -> np.ndarray:
    """Return a C-contiguous float64 numpy copy of ``x`` (the layout POT's solvers expect)."""
    return np.ascontiguousarray(x.detach().cpu().to(torch.float64).numpy())


def numpy_seed(generator: torch.Generator) -> int:
    """Draw an integer seed for numpy/POT from ``generator`` (advances it by one draw)."""
    return int(torch.randint(0, 2**31 - 1, (1,), generator=generator))


def subsample(x: torch.Tensor, n: int | None, generator: torch.Generator) -> torch.Tensor:
    """Uniform random subset of at most ``n`` rows without replacement; ``x`` itself if it is small enough."""
    if n is None or x.shape[0] <= n:
        return x
    if n < 1:
        raise ValueError(f"subsample size must be >= 1, got {n}")
    return x[torch.randperm(x.shape[0], generator=generator)[:n]]


def row_chunks(n_rows: int, n_cols: int) -> Iterator[slice]:
    """Slices over ``n_rows`` rows so that one (rows, n_cols) block holds at most ``CHUNK_ELEMS`` entries."""
    step = max(1, CHUNK_ELEMS // max(1, n_cols))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


def distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Exact Euclidean distances between the rows of ``a`` and ``b`` (no |a|^2+|b|^2-2ab cancellation)."""
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


def squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Exact squared Euclidean distances between the rows of ``a`` and ``b``."""
    return distances(a, b).square()
