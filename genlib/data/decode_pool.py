"""Decoding image files in parallel: a function mapped over parts of a list by worker processes,
the results in the order of the parts, with a progress bar.

At most two parts per worker are in flight, so the results held at once do not grow with the set
and a caller can write each one out as it comes. Workers start from a fork server that has
imported :mod:`genlib.data.image_folder` once (not from the caller, whose compute threads a fork
could deadlock); with one worker, or a single part, everything runs here.
"""
from __future__ import annotations

import collections
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterator

from genlib.progress import Display, tracker

CHUNK = 256  # images a worker decodes at a time


def _context():
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["genlib.data.image_folder"])
    return context


class Pool:
    """``workers`` processes, parts of ``chunk`` items, progress shown as ``progress`` says."""

    def __init__(self, workers: int = 1, chunk: int | None = None, progress: Display = "off", name: str = "decode") -> None:
        chunk = CHUNK if chunk is None else chunk
        if workers < 1 or chunk < 1:
            raise ValueError(f"workers and chunk must be >= 1, got {workers} and {chunk}")
        self.workers, self.chunk, self.progress, self.name = workers, chunk, progress, name

    def map(self, fn: Callable, parts: list[list], *args, name: str | None = None) -> Iterator:
        """``fn(part, *args)`` for each part, in order; the progress is named ``name`` (the pool's by default)."""
        with tracker(sum(map(len, parts)), name or self.name, self.progress, unit="images") as bar:
            if self.workers == 1 or len(parts) == 1:
                for part in parts:
                    yield fn(part, *args)
                    bar.update(len(part))
                return
            with ProcessPoolExecutor(min(self.workers, len(parts)), mp_context=_context()) as pool:
                flight: collections.deque = collections.deque()
                for part in parts:
                    flight.append((len(part), pool.submit(fn, part, *args)))
                    if len(flight) < 2 * self.workers:
                        continue
                    n, future = flight.popleft()
                    yield future.result()
                    bar.update(n)
                while flight:
                    n, future = flight.popleft()
                    yield future.result()
                    bar.update(n)
