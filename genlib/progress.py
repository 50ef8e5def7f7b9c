"""Progress on stderr: bars on a terminal, plain lines in a log (SLURM, CI), or nothing.

``run.progress``: ``auto`` shows bars when stderr is a terminal and, elsewhere, a plain line
every few percent of a stage's work (:class:`Lines`) that a log keeps readable; ``always``
shows bars even off a terminal; ``never`` shows neither, nor the stage's one-line summary.
Progress reads only what the loop already has (the loss of the last logged step, the clock): it
never waits for the device, nor draws a random number.
"""
from __future__ import annotations

import sys
import time
from typing import Iterable, Iterator, Literal

from tqdm.auto import tqdm

Display = Literal["bars", "lines", "off"]
EVERY = 0.05  # a line each 5% of the work,
MIN_INTERVAL_S = 10.0  # and not more often than this, so that a short stage does not fill the log


def display(setting: str = "auto") -> Display:
    """What ``run.progress = setting`` shows here."""
    if setting == "auto":
        return "bars" if sys.stderr.isatty() else "lines"
    return "bars" if setting == "always" else "off"


def want_progress(setting: str = "auto") -> bool:
    """Whether to show bars: ``auto`` only when stderr is a terminal, ``always``, never ``never``."""
    return display(setting) == "bars"


def say(setting: str, line: str) -> None:
    """A stage's status line (its summary), unless ``run.progress`` is ``never``."""
    if display(setting) != "off":
        print(line, file=sys.stderr)


def steps_bar(steps: int, progress: bool) -> Iterator[int]:
    """Reverse time ``steps, ..., 1`` with an optional bar."""
    it: Iterable[int] = range(steps, 0, -1)
    if progress:
        it = tqdm(it, total=steps, desc="sampling", leave=False, dynamic_ncols=True)
    return iter(it)


def tracker(total: int, name: str, shown: Display, unit: str = "steps", initial: int = 0):
    """A bar, plain lines or nothing, as ``shown`` says; all three take ``update``, ``set_postfix``
    and ``n`` as tqdm does."""
    if shown == "lines":
        return Lines(total, name, unit, initial)
    return tqdm(total=total, desc=name, initial=initial, disable=shown != "bars", dynamic_ncols=True)


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``2 h 07 min``."""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def rate(per_s: float) -> str:
    """Three significant figures: ``145``, ``3.21``, ``0.0512``."""
    return f"{per_s:.3g}" if per_s < 1000 else f"{per_s:.0f}"


class Lines:
    """A plain line on stderr each ``EVERY`` of ``total`` units of work (not more often than
    ``MIN_INTERVAL_S``): done and total, the ``set_postfix`` fields, the rate and the time left,
    both from the mean rate since this process started the work (not the last step's rate, which
    jumps at every sync step)."""

    def __init__(self, total: int, name: str, unit: str = "steps", initial: int = 0) -> None:
        self.total, self.name, self.unit = total, name, unit
        self.n = self.start_n = initial
        self.start = self.last = time.perf_counter()
        self.next = self._boundary(initial)
        self.postfix: dict[str, str] = {}

    def _boundary(self, n: int) -> float:
        """The amount of work done at which the next line is due."""
        share = max(self.total * EVERY, 1)
        return (n // share + 1) * share

    def update(self, k: int = 1) -> None:
        self.n += k
        if self.n < self.next or self.n >= self.total:
            return
        now = time.perf_counter()
        if now - self.last >= MIN_INTERVAL_S:
            self.last = now
            print(self.line(now), file=sys.stderr, flush=True)
        self.next = self._boundary(self.n)

    def set_postfix(self, **fields: str) -> None:
        self.postfix = {k: str(v) for k, v in fields.items()}

    def line(self, now: float) -> str:
        per_s = (self.n - self.start_n) / max(now - self.start, 1e-9)
        parts = [f"{self.name}: {self.n}/{self.total} {self.unit} ({100 * self.n / self.total:.0f}%)"]
        parts += [f"{k} {v}" for k, v in self.postfix.items()]
        parts.append(f"{rate(per_s)} {self.unit}/s")
        if per_s > 0:
            parts.append(f"ETA {duration((self.total - self.n) / per_s)}")
        return ", ".join(parts)

    def close(self) -> None:
        pass

    def __enter__(self) -> "Lines":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
