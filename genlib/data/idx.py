"""Reader for the IDX files of MNIST and Fashion-MNIST (plain or gzipped).

The format (LeCun et al., http://yann.lecun.com/exdb/mnist/): two zero bytes, a type byte
(``0x08`` = unsigned byte, the only one these sets use), a byte giving the number of dimensions,
then one big-endian 32-bit size per dimension, then the values in row-major order. Every check
that fails raises :class:`~genlib.errors.DataError` naming the file.
"""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from genlib.errors import DataError

UBYTE = 0x08
GZIP_MAGIC = b"\x1f\x8b"

# The four files of an MNIST-format set, keyed by (split, part); each may also end in ".gz".
IDX_NAMES: dict[tuple[str, str], str] = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if not raw.startswith(GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path}: not a readable gzip file ({err})") from None


def read_idx(path: str | Path, ndim: int | None = None) -> np.ndarray:
    """The array stored in one IDX file (uint8); ``ndim``, if given, is the rank it must have."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(f"{path}: not an IDX file (its first two bytes must be zero)")
    if data[2] != UBYTE:
        raise DataError(f"{path}: IDX type byte is {data[2]:#04x}; only unsigned bytes (0x08) are read")
    rank = data[3]
    if ndim is not None and rank != ndim:
        raise DataError(f"{path}: IDX file of rank {rank}; expected rank {ndim}")
    header = 4 + 4 * rank
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header ({len(data)} bytes)")
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=rank, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(data) != expected:
        raise DataError(f"{path}: {len(data)} bytes, but an IDX array of shape {shape} takes {expected}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape).copy()


def find_idx_files(folder: str | Path) -> dict[tuple[str, str], Path] | None:
    """The four MNIST-format files in ``folder`` (plain or ``.gz``), or None if any is missing."""
    folder = Path(folder)
    found = {}
    for key, name in IDX_NAMES.items():
        candidates = [folder / name, folder / f"{name}.gz"]
        present = [c for c in candidates if c.is_file()]
        if not present:
            return None
        found[key] = present[0]
    return found


def read_idx_split(images: Path, labels: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, H, W)`` and labels ``(N,)`` of one split, checked to agree in length."""
    x, y = read_idx(images, ndim=3), read_idx(labels, ndim=1)
    if len(x) != len(y):
        raise DataError(f"{images} holds {len(x)} images but {labels} holds {len(y)} labels")
    return x, y
