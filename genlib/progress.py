"""Progress bars that show on a terminal and stay quiet in CI, logs and pipes."""
from __future__ import annotations

import sys
from typing import Iterable, Iterator

from tqdm.auto import tqdm


def want_progress(setting: str = "auto") -> bool:
    """``auto`` shows bars only when stderr is a terminal; ``always`` and ``never`` force it."""
    if setting == "auto":
        return sys.stderr.isatty()
    return setting == "always"


def steps_bar(steps: int, progress: bool) -> Iterator[int]:
    """Reverse time ``steps, ..., 1`` with an optional bar."""
    it: Iterable[int] = range(steps, 0, -1)
    if progress:
        it = tqdm(it, total=steps, desc="sampling", leave=False, dynamic_ncols=True)
    return iter(it)


def bar(total: int, desc: str, progress: bool, initial: int = 0):
    return tqdm(total=total, desc=desc, initial=initial, disable=not progress, dynamic_ncols=True)
