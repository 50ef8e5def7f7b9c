"""Atomic writes: every output goes to a temporary file in its folder and is renamed into place,
so a kill never leaves a truncated file for a later stage to read."""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from genlib.errors import DataError

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync and rename it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual mode
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def _write_with(path: str | Path, writer: Callable[[Path], None]) -> None:
    with atomic_path(path) as tmp:
        writer(tmp)


def write_text(path: str | Path, text: str) -> None:
    _write_with(path, lambda p: p.write_text(text))


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_bytes(path: str | Path, data: bytes) -> None:
    _write_with(path, lambda p: p.write_bytes(data))


def save_array(path: str | Path, array: np.ndarray) -> None:
    def writer(p: Path) -> None:
        with open(p, "wb") as fh:
            np.save(fh, array, allow_pickle=False)

    _write_with(path, writer)


def load_array(path: str | Path) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found (run the stage that writes it: dvc repro)")
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as err:  # numpy raises ValueError, OSError, EOFError, BadZipFile, ...
        raise DataError(f"{path}: not a readable .npy array ({type(err).__name__}: {err})") from None
    if not isinstance(arr, np.ndarray):
        raise DataError(f"{path}: expected one .npy array, found an .npz archive")
    return arr


def read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found (run the stage that writes it: dvc repro)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON ({err})") from None


def save_torch(path: str | Path, obj: Any) -> None:
    """Saved through an open file, so the archive's inner folder is always ``archive`` (given a
    path, torch names it after the temporary file): the same state gives the same bytes, and
    DVC the same hash."""

    def writer(p: Path) -> None:
        with open(p, "wb") as fh:
            torch.save(obj, fh)

    _write_with(path, writer)


def load_torch(path: str | Path) -> Any:
    """Load a checkpoint with ``weights_only=True``: tensors and plain containers, never code."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: checkpoint not found (run the train stage: dvc repro train)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many kinds for truncated or foreign files
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"{path}: corrupt or unreadable checkpoint ({first})") from None
