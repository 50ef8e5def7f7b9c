"""Reading what ``prepare_data`` wrote: the arrays, checked, and the set's description."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genlib import io
from genlib.errors import DataError


def load_points(path: Path) -> torch.Tensor:
    """A prepared data file as a tensor: uint8 images as they are, anything else as float32
    (refusing non-finite values); empty data is refused."""
    arr = io.load_array(path)
    if arr.ndim < 2 or arr.shape[0] == 0:
        raise DataError(f"{path}: expected a non-empty array of points (N, ...), got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return torch.from_numpy(np.ascontiguousarray(arr))
    if not np.isfinite(arr).all():
        raise DataError(f"{path}: {int((~np.isfinite(arr)).any(axis=tuple(range(1, arr.ndim))).sum())} points hold NaN or inf")
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))


def load_uint8(path: Path) -> np.ndarray:
    """A file of uint8 images ``(N, C, H, W)``, refused with one line if it is anything else."""
    arr = io.load_array(path)
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[0] == 0:
        raise DataError(f"{path}: expected uint8 images (N, C, H, W), got {arr.dtype} of shape {arr.shape}")
    return arr


def read_meta(prepared: Path) -> dict:
    """``meta.json``: the set's own description (:class:`genlib.data.splits.Splits`)."""
    meta = io.read_json(prepared / "meta.json")
    if not isinstance(meta, dict) or "shape" not in meta:
        raise DataError(f"{prepared / 'meta.json'}: not a prepared set's description (no shape); rerun prepare_data")
    return meta
