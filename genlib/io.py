"""Atomic writes: every output goes to a temporary file in its folder and is renamed into place,
so a kill never leaves a truncated file for a later stage to read; and the checked reads of
what the stages pass on (arrays, JSON records, weights-only torch files), each refusing a bad
file with one line that names it.

Inside :func:`outputs_together` (each stage runs in one) the renames and removals wait for the
end of the block and happen together, with SIGINT and SIGTERM held: an error, a full disk or a
stop before then leaves every output as it was, never some new and some old. No process can
hold off SIGKILL, so the renames and removals are first written down, in order, in a journal
(``.genlib/commit.json`` in the folder the stage runs in, the project's root), and each one done
is logged there; the next block to open (the next stage run) completes a commit a kill cut
short, so the outputs are all the new ones. A full disk is one
:class:`~genlib.errors.DiskFull` line naming the file."""
from __future__ import annotations

import contextlib
import errno
import glob
import json
import os
import pickle
import re
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch

from genlib.errors import DataError, DiskFull, Stopped

_UMASK = os.umask(0)
os.umask(_UMASK)

REMAKE = "run the stage that writes it: dvc repro"


def remove_leftovers(path: Path) -> list[Path]:
    """Remove what killed writes of ``path`` (SIGKILL, a power cut) left beside it, and only
    that: files named as :func:`atomic_path` names its temporary files, ``.<name>.XXXXXXXX.tmp``
    (eight characters of ``tempfile``'s alphabet). One writer per target is assumed, as in the
    pipeline: rank 0 alone writes, and DVC runs one stage at a time in a workspace."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.[a-z0-9_]{{8}}\.tmp")
    gone = [p for p in path.parent.glob(f".{glob.escape(path.name)}.*.tmp")
            if pattern.fullmatch(p.name) and p.is_file() and not p.is_symlink()]
    for p in gone:
        p.unlink(missing_ok=True)
    return gone


class _Together:
    """The renames and removals waiting for the end of :func:`outputs_together` (None: none open)."""

    def __init__(self) -> None:
        self.ops: list[list[str]] | None = None  # ["replace", source, target] or ["remove", path]
        self.temps: list[Path] = []
        self.aborts: list[Callable[[], None]] = []
        self.written: dict[Path, Path] = {}  # each output written in the block -> its temporary file


_together = _Together()

JOURNAL = Path(".genlib") / "commit.json"  # in the folder stages run in (the project's root)


@contextlib.contextmanager
def outputs_together() -> Iterator[None]:
    """Hold the renames of :func:`atomic_path` and :func:`move` and the removals of :func:`remove`
    until the block ends, then do them all in order with SIGINT and SIGTERM held (renames in
    one folder cost no space), logged in the :data:`JOURNAL` so that a SIGKILL among them is
    completed by the next block (:func:`finish_commit`, first thing on entering it). A block left
    by an exception (a full disk, a Ctrl-C, a bad file) removes its temporary files and changes
    no output. A signal held is delivered once all are done: SIGINT as
    :class:`~genlib.errors.Stopped`, SIGTERM as itself. Nested blocks join the outer one."""
    if _together.ops is not None:
        yield
        return
    journal = Path.cwd() / JOURNAL
    if finish_commit(journal):
        print(f"genlib: completed the outputs of a stage killed while it put them in place ({JOURNAL}); they are all its new ones", file=sys.stderr)
    _together.ops, _together.temps, _together.aborts, _together.written = [], [], [], {}
    try:
        try:
            yield
        finally:
            ops, temps, aborts = _together.ops, _together.temps, _together.aborts
            _together.ops, _together.temps, _together.aborts, _together.written = None, [], [], {}
        with _signals_held() as held:
            _commit(ops, journal)
    except BaseException:
        if not journal.exists():  # nothing was put in place: the block is undone
            for undo in aborts:
                undo()
            for tmp in temps:
                tmp.unlink(missing_ok=True)
        raise
    if held:
        if held[0] == signal.SIGINT:
            raise Stopped("stopped by SIGINT (Ctrl-C) while the outputs were put in place; they were all written whole")
        os.kill(os.getpid(), held[0])


def _commit(ops: list[list[str]], journal: Path) -> None:
    """Do ``ops`` in order, each logged in ``journal`` once done; the journal goes when all are."""
    if not ops:
        return
    write_text(journal, json.dumps(ops) + "\n")  # whole or not there (the block is closed: at once)
    with open(journal, "a") as log:
        for i, op in enumerate(ops):
            _apply(op)
            log.write(f"{i}\n")
            log.flush()  # in the kernel's hands: a SIGKILL of this process cannot lose it
    journal.unlink()


def finish_commit(journal: str | Path = JOURNAL) -> bool:
    """Complete the commit that ``journal`` records, if one is there (a kill cut it short): the
    steps after the last one logged are done again, each of which gives the same end if it was
    done already. Returns whether there was one."""
    journal = Path(journal)
    remove_leftovers(journal)
    if not journal.is_file():
        return False
    try:
        first, *done = journal.read_text().splitlines()
        ops = json.loads(first)
        start = len([line for line in done if line.isdigit()])
        if not isinstance(ops, list) or not all(_is_op(op) for op in ops):
            raise ValueError("not a list of steps")
    except (ValueError, UnicodeDecodeError) as err:
        raise DataError(f"{journal}: not a commit journal genlib wrote ({err}); remove it and run the stage again (dvc repro)") from None
    with _signals_held():
        for op in ops[start:]:
            _apply(op)
        journal.unlink()
    return True


def _is_op(op: Any) -> bool:
    return (isinstance(op, list) and all(isinstance(x, str) and os.path.isabs(x) for x in op[1:])
            and ((len(op) == 3 and op[0] == "replace") or (len(op) == 2 and op[0] == "remove")))


def _old(target: Path) -> Path:
    """Where :func:`_apply` puts a folder it replaces, until the new one is in place."""
    return target.with_name(f".{target.name}.old")


def _apply(op: list[str]) -> None:
    """One step of a commit, such that doing it again after it was done changes nothing: a
    replace whose source is gone was done (or a later write of its target took its place)."""
    kind, *paths = op
    if kind == "remove":
        _remove_now(Path(paths[0]))
        return
    source, target = Path(paths[0]), Path(paths[1])
    if source.is_dir() and not source.is_symlink():  # a folder: the old one aside, the new one in
        _remove_now(_old(target))
        if target.exists():
            target.rename(_old(target))
        source.rename(target)
    elif source.exists():
        os.replace(source, target)
    _remove_now(_old(target))


def _remove_now(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def written_now() -> Iterator[None]:
    """Write at once inside :func:`outputs_together`: for files that are not outputs (a resume
    checkpoint, which must survive the stage's failure)."""
    saved = _together.ops, _together.temps, _together.aborts, _together.written
    _together.ops, _together.temps, _together.aborts, _together.written = None, [], [], {}
    try:
        yield
    finally:
        _together.ops, _together.temps, _together.aborts, _together.written = saved


def _at_commit(op: list[str]) -> None:
    """Do ``op`` (a step of :func:`_apply`) at the end of :func:`outputs_together`, or now."""
    if _together.ops is None:
        _apply(op)
    else:
        _together.ops.append(op)


def move(source: str | Path, target: str | Path) -> None:
    """Put the file or folder ``source`` in place of ``target``, at the end of :func:`outputs_together`."""
    _at_commit(["replace", str(Path(source).resolve()), str(Path(target).resolve())])


def latest(path: str | Path) -> Path:
    """Where to read ``path`` as this stage wrote it: its temporary file while the rename waits
    for the end of :func:`outputs_together`, else ``path`` itself."""
    path = Path(path)
    return _together.written.get(path.resolve(), path)


def on_abort(undo: Callable[[], None]) -> None:
    """Run ``undo`` (removing what a writer of its own left, e.g. dvclive's folder) if the open
    :func:`outputs_together` block ends by an exception; outside one, never."""
    if _together.ops is not None:
        _together.aborts.append(undo)


def remove(path: str | Path) -> None:
    """Remove the file or folder ``path`` (if it exists), at the end of :func:`outputs_together`."""
    _at_commit(["remove", str(Path(path).resolve())])


@contextlib.contextmanager
def _signals_held() -> Iterator[list[int]]:
    """Record SIGINT and SIGTERM instead of acting on them (main thread only; elsewhere none come)."""
    held: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield held
        return
    previous = {sig: signal.signal(sig, lambda signum, frame: held.append(signum)) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield held
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_LOW_SPACE = 1 << 20  # bytes: a write that failed with less than this left failed for space


def _no_space(err: BaseException, folder: Path) -> bool:
    """Whether a failed write failed for want of space: ENOSPC or EDQUOT in the exception or what
    it wraps (torch wraps the OSError in a RuntimeError; numpy reports a short write without an
    errno), or, for those two without an errno, less than 1 MiB left on the folder's file system."""
    seen = err
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in _NO_SPACE:
            return True
        seen = seen.__cause__ or seen.__context__
    if not isinstance(err, (OSError, RuntimeError)) or (isinstance(err, OSError) and err.errno is not None):
        return False  # an errno that says something else (EACCES, EROFS, ...)
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < _LOW_SPACE


def _disk_full(path: Path) -> DiskFull:
    folder = path.parent
    return DiskFull(f"{path}: the disk is full (no space left on device) while writing it; the file is as it was. "
                    f"Free space on the file system of {folder} (df -h {folder}) and run the stage again (dvc repro)")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync and rename it onto ``path`` (at
    the end of :func:`outputs_together` inside one). The leftovers of earlier, killed writes of
    ``path`` are removed first. A write that fails for want of space is :class:`DiskFull`."""
    path = Path(path)
    tmp_path: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_leftovers(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual mode
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        if _together.ops is None:
            os.replace(tmp_path, path)
        else:
            _together.temps.append(tmp_path)
            _together.written[path.resolve()] = tmp_path
            _together.ops.append(["replace", str(tmp_path.resolve()), str(path.resolve())])
            tmp_path = None
    except (OSError, RuntimeError) as err:
        if _no_space(err, path.parent):
            raise _disk_full(path) from None
        raise
    finally:
        if tmp_path is not None:
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


def save_array_chunks(path: str | Path, shape: tuple[int, ...], dtype, chunks: Iterable[np.ndarray]) -> None:
    """The ``.npy`` file :func:`save_array` writes for an array of ``shape``, written from ``chunks``
    along its first axis as they come, so the whole array is never in memory."""
    dtype = np.dtype(dtype)

    def writer(p: Path) -> None:
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(shape)}
        rows = 0
        with open(p, "wb") as fh:
            np.lib.format.write_array_header_1_0(fh, header)
            for chunk in chunks:
                if chunk.dtype != dtype or chunk.shape[1:] != tuple(shape[1:]):
                    raise ValueError(f"{path}: a chunk of {chunk.dtype} {chunk.shape} in an array of {dtype} {tuple(shape)}")
                fh.write(np.ascontiguousarray(chunk).data)
                rows += len(chunk)
        if rows != shape[0]:
            raise ValueError(f"{path}: {rows} rows written, the header says {shape[0]}")

    _write_with(path, writer)


def copy_file(source: str | Path, path: str | Path) -> None:
    """Copy ``source`` onto ``path`` through a temporary file, as every other output is written."""
    source = Path(source)
    if not source.is_file():
        raise DataError(f"{source}: file not found ({REMAKE})")
    _write_with(path, lambda p: shutil.copyfile(source, p))


def load_array(path: str | Path, mmap: bool = False) -> np.ndarray:
    """The array in the ``.npy`` file ``path``; with ``mmap`` mapped from the file (copy-on-write:
    nothing is written back), its pages read as they are used."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found ({REMAKE})")
    try:
        arr = np.load(path, allow_pickle=False, mmap_mode="c" if mmap else None)
    except Exception as err:  # numpy raises ValueError, OSError, EOFError, BadZipFile, ...
        raise DataError(f"{path}: not a readable .npy array ({type(err).__name__}: {err})") from None
    if not isinstance(arr, np.ndarray):
        raise DataError(f"{path}: expected one .npy array, found an .npz archive")
    return arr


def read_json(path: str | Path) -> Any:
    """The JSON value in ``path``, which must be UTF-8 text."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found ({REMAKE})")
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text (byte {err.object[err.start]:#04x} at offset {err.start}); {REMAKE}") from None
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON ({err}); {REMAKE}") from None
    except RecursionError:
        raise DataError(f"{path}: JSON nested too deeply to read; {REMAKE}") from None


_JSON_TYPES = {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean", type(None): "null"}


def read_record(path: str | Path, required: tuple[str, ...] = ()) -> dict:
    """A JSON object (a stage's record: ``meta.json``, ``info.json``, ``eval.json``, ...) holding
    at least the ``required`` keys, the ones its reader uses."""
    record = read_json(path)
    if not isinstance(record, dict):
        raise DataError(f"{path}: expected a JSON object, found {_JSON_TYPES.get(type(record), type(record).__name__)}; {REMAKE}")
    missing = [key for key in required if key not in record]
    if missing:
        raise DataError(f"{path}: no {', '.join(repr(k) for k in missing)} in it (expected keys {', '.join(required)}); {REMAKE}")
    return record


def save_torch(path: str | Path, obj: Any) -> None:
    """Saved through an open file, so the archive's inner folder is always ``archive`` (given a
    path, torch names it after the temporary file): the same state gives the same bytes, and
    DVC the same hash."""

    def writer(p: Path) -> None:
        with open(p, "wb") as fh:
            torch.save(obj, fh)

    _write_with(path, writer)


# torch's weights-only unpickler names the global a file asks for: "GLOBAL posix.system".
_GLOBAL = re.compile(r"GLOBAL ([\w.<>]+)")


def load_torch(path: str | Path, what: str = "torch file", remake: str = REMAKE) -> Any:
    """Load a torch file with ``weights_only=True``: tensors and plain containers, never code.

    Every failure is one line naming the file and, unless ``remake`` is empty, how to remake it.
    A file that asks for a Python global (the way a pickle runs code) is refused by that global's
    name; torch's advice in that message, to load it with ``weights_only=False``, is left out,
    because genlib never does."""
    path = Path(path)
    then = f"; {remake}" if remake else ""
    if not path.is_file():
        raise DataError(f"{path}: {what} not found{then}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many kinds for truncated, foreign or crafted files
        found = _GLOBAL.search(str(err))
        if found:
            raise DataError(
                f"{path}: {what} refused: it asks for the Python global {found.group(1)}, and only tensors and "
                f"plain containers are loaded (weights_only=True), never code{then}"
            ) from None
        raise DataError(f"{path}: corrupt or unreadable {what} ({_reason(err)}){then}") from None


def _reason(err: Exception) -> str:
    """The first line of why a load failed; for an unpickling error the unpickler's own words,
    which torch wraps in its advice."""
    if isinstance(err, pickle.UnpicklingError) and err.__context__ is not None:
        err = err.__context__
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__
