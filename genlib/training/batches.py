"""Where the training loop takes its batches from: the whole set on the device, or a ``.npy`` file
read a batch at a time, ahead of the loop, by background threads.

The loop draws each epoch's order with its generator on the training device (``perm``) and asks
for the rows ``perm[pos * size : (pos + 1) * size]``. Both sources return exactly those rows, in
that order, so the data order and the trained weights do not depend on where the set lives.

:class:`FromDisk` reads rows with ``os.preadv`` into the batch's own buffer rather than mapping
the file: a mapping would count every page read in the process's resident memory, which would
then grow with the set; read this way, the process holds only the batches in flight (the kernel's
page cache keeps what it has room for). While the loop trains on one batch, the next ``AHEAD``
are read; a new order (a new epoch, a NaN restore, a resume) drops the batches read for the old one.
"""
from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from genlib.errors import DataError

AHEAD = 4  # batches read ahead of the loop
READERS = 2  # threads reading them (os.preadv releases the GIL)


class OnDevice:
    """A set held whole as one tensor (on the training device)."""

    def __init__(self, data: torch.Tensor) -> None:
        self.data = data
        self.n, self.item_shape, self.device = data.shape[0], tuple(data.shape[1:]), data.device

    def batch(self, perm: torch.Tensor, pos: int, size: int) -> torch.Tensor:
        return self.data[perm[pos * size : (pos + 1) * size]]

    def close(self) -> None:
        pass


def npy_layout(path: Path) -> tuple[np.dtype, tuple[int, ...], int]:
    """(dtype, shape, offset of the first byte of data) of a C-ordered ``.npy`` file, from its header."""
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read_header(fh)
            offset = fh.tell()
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: not a readable .npy array ({type(err).__name__}: {err})") from None
    if fortran or dtype.hasobject:
        raise DataError(f"{path}: a Fortran-ordered or object array cannot be read by rows; rerun prepare_data to remake it (dvc repro)")
    size = offset + int(np.prod(shape)) * dtype.itemsize
    if os.path.getsize(path) < size:
        raise DataError(f"{path}: truncated ({os.path.getsize(path)} bytes, its header describes {size}); rerun prepare_data to remake it (dvc repro)")
    return dtype, tuple(shape), offset


class FromDisk:
    """A ``.npy`` file of ``(N, ...)`` items whose batches are read from disk as the loop needs them
    and moved to ``device`` (through pinned memory on CUDA)."""

    def __init__(self, path: Path, device: torch.device) -> None:
        self.path = path
        self.dtype, shape, self.offset = npy_layout(path)
        self.n, self.item_shape, self.device = shape[0], shape[1:], device
        self.row = int(np.prod(self.item_shape)) * self.dtype.itemsize
        self.fd = os.open(path, os.O_RDONLY)
        self.pool = ThreadPoolExecutor(READERS, thread_name_prefix="genlib-batches")
        self.perm: torch.Tensor | None = None  # the order the read-ahead follows, and its rows on the CPU
        self.order: np.ndarray | None = None
        self.pending: dict[int, Future] = {}

    def _read(self, rows: np.ndarray) -> torch.Tensor:
        out = np.empty((len(rows), *self.item_shape), dtype=self.dtype)
        flat, row = memoryview(out).cast("B"), self.row
        for j, i in enumerate(rows.tolist()):
            if os.preadv(self.fd, [flat[j * row : (j + 1) * row]], self.offset + i * row) != row:
                raise DataError(f"{self.path}: item {i} could not be read whole (did the file change during training?)")
        batch = torch.from_numpy(out)
        return batch.pin_memory() if self.device.type == "cuda" else batch

    def _submit(self, pos: int, size: int) -> None:
        if pos not in self.pending and pos * size < self.n:
            self.pending[pos] = self.pool.submit(self._read, self.order[pos * size : (pos + 1) * size])

    def batch(self, perm: torch.Tensor, pos: int, size: int) -> torch.Tensor:
        if perm is not self.perm:  # a new order: what was read ahead for the old one is of no use
            for future in self.pending.values():
                future.cancel()
            self.pending, self.perm, self.order = {}, perm, perm.cpu().numpy()
        self._submit(pos, size)
        rows = self.pending.pop(pos).result()
        for ahead in range(pos + 1, pos + 1 + AHEAD):
            self._submit(ahead, size)
        return rows.to(self.device, non_blocking=True)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        os.close(self.fd)
