"""Entry points: the thin DVC stages and the ``genlib`` command."""
from __future__ import annotations

import sys
from typing import Callable

from genlib.errors import ConfigError, DataError
from genlib.registry import UnknownNameError


def fail(message: str) -> None:
    """Print one line naming the problem and exit non-zero."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def stage_main(step: Callable, params_path: str = "params.yaml") -> None:
    """Load and check ``params.yaml`` first, then run one pipeline step; known errors are one line."""
    from genlib.training.trainer import NonFiniteLoss

    try:
        from genlib.config import load

        cfg = load(params_path)
        step(cfg)
    except (ConfigError, DataError, UnknownNameError, NonFiniteLoss, ImportError) as err:
        fail(str(err))
