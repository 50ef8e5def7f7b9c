"""Reading what ``prepare_data`` (and ``generate``, for the samples) wrote: the arrays, checked
against the set's description, and that description."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genlib import io
from genlib.errors import DataError

PREPARE = "rerun prepare_data to remake it (dvc repro)"


def check_items(arr: np.ndarray, path: Path, shape, remake: str) -> None:
    """Refuse an array that is not ``(N, *shape)`` with N > 0 (``shape`` None: any item shape)."""
    if arr.ndim < 2 or arr.shape[0] == 0:
        raise DataError(f"{path}: expected a non-empty array of points (N, ...), got shape {arr.shape}; {remake}")
    if shape is not None and arr.shape[1:] != tuple(shape):
        raise DataError(f"{path}: items of shape {arr.shape[1:]}, but meta.json describes {tuple(shape)}; {remake}")


def load_points(path: Path, shape=None, remake: str = PREPARE) -> torch.Tensor:
    """A prepared data file as a tensor: uint8 images as they are, anything else as float32
    (refusing non-finite values); empty data, or items not of ``shape``, are refused."""
    arr = io.load_array(path)
    check_items(arr, path, shape, remake)
    if arr.dtype == np.uint8:
        return torch.from_numpy(np.ascontiguousarray(arr))
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).any(axis=tuple(range(1, arr.ndim))).sum())
        raise DataError(f"{path}: {bad} points hold NaN or inf; {remake}")
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))


def load_uint8(path: Path, shape=None, remake: str = PREPARE, whole_mb: int | None = None) -> np.ndarray:
    """A file of uint8 images ``(N, C, H, W)`` (of ``shape`` when given), refused with one line if
    it is anything else. Read whole, or, when ``whole_mb`` is given and the images are more than
    that many MiB (``run.whole_set_mb``), mapped from the file."""
    arr = io.load_array(path, mmap=whole_mb is not None)
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[0] == 0:
        raise DataError(f"{path}: expected uint8 images (N, C, H, W), got {arr.dtype} of shape {arr.shape}; {remake}")
    check_items(arr, path, shape, remake)
    if whole_mb is not None and arr.nbytes <= whole_mb * 2**20:
        return np.array(arr)  # read whole
    return arr


def read_meta(prepared: Path) -> dict:
    """``meta.json``: the set's own description (:class:`genlib.data.splits.Splits`)."""
    file = prepared / "meta.json"
    meta = io.read_record(file, ("shape",))
    shape, kind = meta["shape"], meta.get("kind", "points")
    if not isinstance(shape, list) or not shape or not all(type(d) is int and d > 0 for d in shape):
        raise DataError(f"{file}: its shape {shape!r} is not a list of positive integers; {PREPARE}")
    if kind not in ("points", "images"):
        raise DataError(f"{file}: its kind {kind!r} is neither 'points' nor 'images'; {PREPARE}")
    return meta
